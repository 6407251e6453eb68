//! The c10d shim in one process: a Gloo group of one rank (a real TCPStore
//! rendezvous and Gloo backend) runs the collectives and synchronised
//! BatchNorm, which at world size 1 must equal libtorch's own BatchNorm.

use std::time::Duration;

use model::dist::{Backend, Group, Launch};
use tch::{Device, Kind, Tensor};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn group() -> Group {
    let launch = Launch {
        rank: 0,
        world: 1,
        local_rank: 0,
        master_addr: "127.0.0.1".into(),
        master_port: free_port(),
        launcher: "torchrun",
    };
    Group::new(&launch, Backend::Gloo, Duration::from_secs(30)).unwrap()
}

fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    let scale = b.abs().max().double_value(&[]).max(1e-12);
    (a - b).abs().max().double_value(&[]) / scale
}

#[test]
fn one_rank_collectives_and_sync_batch_norm_match_libtorch() {
    let g = group();
    assert_eq!((g.rank(), g.world(), g.backend()), (0, 1, Backend::Gloo));
    let t = Tensor::from_slice(&[1.0f32, -2.0, 3.5]);
    g.all_reduce_sum(&[&t], "test").unwrap();
    assert_eq!(Vec::<f32>::try_from(&t).unwrap(), [1.0, -2.0, 3.5], "a sum over one rank changes nothing");
    g.broadcast(&[&t], 0, "test").unwrap();

    tch::manual_seed(7);
    for shape in [vec![8i64, 16, 5, 5], vec![8, 64]] {
        let c = shape[1];
        let x = (Tensor::randn(&shape, (Kind::Float, Device::Cpu)) * 3.0 + 1.5).set_requires_grad(true);
        let w = (Tensor::rand([c], (Kind::Float, Device::Cpu)) + 0.5).set_requires_grad(true);
        let b = Tensor::randn([c], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let up = Tensor::randn(&shape, (Kind::Float, Device::Cpu));
        let (rm1, rv1) =
            (Tensor::zeros([c], (Kind::Float, Device::Cpu)), Tensor::ones([c], (Kind::Float, Device::Cpu)));
        let (rm2, rv2) = (rm1.copy(), rv1.copy());

        let y1 = Tensor::batch_norm(&x, Some(&w), Some(&b), Some(&rm1), Some(&rv1), true, 0.1, 1e-5, false);
        (&y1 * &up).sum(Kind::Float).backward();
        let (gx1, gw1, gb1) = (x.grad().copy(), w.grad().copy(), b.grad().copy());
        for v in [&x, &w, &b] {
            let _ = v.grad().zero_();
        }
        let y2 = g.sync_batch_norm(&x, Some(&w), Some(&b), Some(&rm2), Some(&rv2), 0.1, 1e-5).unwrap();
        (&y2 * &up).sum(Kind::Float).backward();
        let (gx2, gw2, gb2) = (x.grad(), w.grad(), b.grad());
        for (what, a, b, tol) in [
            ("output", &y2, &y1, 1e-6),
            ("input gradient", &gx2, &gx1, 1e-5),
            ("weight gradient", &gw2, &gw1, 1e-5),
            ("bias gradient", &gb2, &gb1, 1e-5),
            ("running mean", &rm2, &rm1, 1e-6),
            ("running var", &rv2, &rv1, 1e-6),
        ] {
            let e = max_rel(a, b);
            eprintln!("{shape:?} {what}: max relative error {e:.2e}");
            assert!(e < tol, "{shape:?} {what}: {e:.2e} >= {tol:e}");
        }
    }
}

#[test]
fn a_rendezvous_nobody_joins_fails_with_the_address_within_its_timeout() {
    let port = free_port();
    let launch = Launch {
        rank: 1,
        world: 2,
        local_rank: 0,
        master_addr: "127.0.0.1".into(),
        master_port: port,
        launcher: "torchrun",
    };
    let t0 = std::time::Instant::now();
    let err = Group::new(&launch, Backend::Gloo, Duration::from_secs(3)).unwrap_err().to_string();
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("rank 1 of 2"), "{err}");
    assert!(!err.contains("Exception raised from"), "no C++ backtrace: {err}");
}
