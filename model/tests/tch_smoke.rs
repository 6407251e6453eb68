//! libtorch works from Rust: a small conv net learns, and a TorchScript trace
//! round-trips through a file with identical outputs.

use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

fn net(vs: &nn::Path) -> impl Module {
    nn::seq()
        .add(nn::conv2d(vs / "conv", 3, 8, 3, nn::ConvConfig { padding: 1, ..Default::default() }))
        .add_fn(|x| x.relu().adaptive_avg_pool2d([1, 1]).flatten(1, -1))
        .add(nn::linear(vs / "fc", 8, 2, Default::default()))
}

#[test]
fn conv_net_step_lowers_the_loss() {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = net(&vs.root());
    let mut opt = nn::Sgd { momentum: 0.9, ..Default::default() }.build(&vs, 0.1).unwrap();
    let xs = Tensor::randn([16, 3, 8, 8], (Kind::Float, Device::Cpu));
    let ys = (xs.mean_dim(&[1i64, 2, 3][..], false, Kind::Float).gt(0.0)).to_kind(Kind::Int64);
    let loss0 = model.forward(&xs).cross_entropy_for_logits(&ys).double_value(&[]);
    for _ in 0..20 {
        let loss = model.forward(&xs).cross_entropy_for_logits(&ys);
        opt.backward_step(&loss);
    }
    let loss1 = model.forward(&xs).cross_entropy_for_logits(&ys).double_value(&[]);
    assert!(loss1 < loss0, "loss did not fall: {loss0} -> {loss1}");
}

#[test]
fn torchscript_trace_round_trips() {
    tch::manual_seed(1);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = net(&vs.root());
    vs.freeze(); // tracing needs frozen variables
    let x = Tensor::randn([2, 3, 8, 8], (Kind::Float, Device::Cpu));
    let mut closure = |inputs: &[Tensor]| vec![model.forward(&inputs[0])];
    let traced = tch::CModule::create_by_tracing("Net", "forward", &[x.shallow_clone()], &mut closure).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.pt");
    traced.save(&path).unwrap();
    let loaded = tch::CModule::load(&path).unwrap();
    let expected = model.forward(&x);
    let got = loaded.forward_ts(&[x]).unwrap();
    assert!(expected.allclose(&got, 0.0, 0.0, false), "traced output differs");
}
