//! `mcsfau export`: a checkpoint's backbone as a torchvision state dict,
//! loaded by the venv's PyTorch into `torchvision.models.resnet50` (the
//! numerical equality of the two ResNet-50s is model/tests/torchvision_export.rs).

mod support;

use std::path::Path;
use std::process::{Command, Output};

use model::backbone::Backbone;
use model::checkpoint::{CheckpointMeta, FORMAT};
use model::config::ModelConfig;
use support::faults::{env, text};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

fn python() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

fn export(args: &[&Path]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcsfau"));
    cmd.arg("export").arg("--checkpoint").arg(args[0]).arg("--out").arg(args[1]);
    if let Some(pth) = args.get(2) {
        cmd.arg("--pth").arg(pth).arg("--python").arg(python());
    }
    cmd.output().unwrap()
}

const CHECK: &str = r#"
import json, sys, torch, torchvision
from safetensors.torch import load_file
ckpt, st, pth = load_file(sys.argv[1]), load_file(sys.argv[2]), torch.load(sys.argv[3], weights_only=True)
assert sorted(st) == sorted(pth), "the .pth holds the safetensors' tensors"
assert all(torch.equal(st[k], pth[k]) for k in st)
same = all(torch.equal(st[k], ckpt["online.backbone." + k]) for k in st if not k.endswith("num_batches_tracked"))
m = torchvision.models.resnet50(weights=None)
r = m.load_state_dict(pth, strict=False)
print(json.dumps({"missing": sorted(r.missing_keys), "unexpected": sorted(r.unexpected_keys), "same": same,
                  "tracked": int(m.layer4[2].bn3.num_batches_tracked), "bn1_var": float(m.bn1.running_var.sum())}))
"#;

#[test]
fn a_final_checkpoint_exports_to_a_resnet50_state_dict_and_a_pth() {
    // A paper-preset online backbone (ResNet-50) saved as `model.safetensors`
    // is laid out (names, sidecar) as pretrain writes it.
    let d = tempfile::tempdir().unwrap();
    tch::manual_seed(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Backbone::new(vs.root() / "online" / "backbone", &ModelConfig::paper());
    let _ = tch::no_grad(|| net.forward_t(&Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu)), true));
    let ckpt = d.path().join("model.safetensors");
    let vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    Tensor::write_safetensors(&vars, &ckpt).unwrap();
    let meta = CheckpointMeta { format: FORMAT.into(), step: 7, config: ModelConfig::paper() };
    std::fs::write(ckpt.with_extension("json"), serde_json::to_string(&meta).unwrap()).unwrap();

    let (st, pth) = (d.path().join("r50.safetensors"), d.path().join("r50.pth"));
    let o = export(&[&ckpt, &st, &pth]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("step 7"), "{}", text(&o));
    let o = Command::new(python()).arg("-c").arg(CHECK).args([&ckpt, &st, &pth]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["missing"], serde_json::json!(["fc.bias", "fc.weight"]), "{r}");
    assert_eq!(r["unexpected"], serde_json::json!([]), "{r}");
    assert_eq!((r["same"].as_bool(), r["tracked"].as_i64()), (Some(true), Some(7)), "{r}");
    assert!(r["bn1_var"].as_f64().unwrap() != 64.0, "the running statistics were exported: {r}");

    // Refusals: --out over the checkpoint, a file that is no checkpoint.
    let before = std::fs::read(&ckpt).unwrap();
    let o = export(&[&ckpt, &ckpt]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--out is the checkpoint itself"), "{}", text(&o));
    assert_eq!(std::fs::read(&ckpt).unwrap(), before);
    let o = export(&[&st, &d.path().join("again.safetensors")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("r50.safetensors") && text(&o).contains("no online.backbone"), "{}", text(&o));
}

#[test]
fn an_intermediate_training_checkpoint_exports_too() {
    let e = env();
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_mcsfau"))
        .args(["pretrain", "--config", "tiny", "--steps", "2", "--shards"])
        .arg(e.root.join("good"))
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let step = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .max()
        .unwrap();
    let out = d.path().join("b.safetensors");
    let o = export(&[&step, &out]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("step 2"), "{}", text(&o));
    let t = Tensor::read_safetensors(&out).unwrap();
    assert!(
        t.iter().any(|(n, _)| n == "conv1.weight") && t.iter().any(|(n, _)| n == "layer1.0.bn1.num_batches_tracked")
    );
    assert!(t.iter().all(|(n, _)| !n.starts_with("online.") && !n.starts_with("target.")));
    // The same intermediate checkpoint loads as a model (probe, detect and
    // masks take it as --checkpoint).
    let (net, meta) = model::checkpoint::load(&step, Device::Cpu).unwrap();
    assert_eq!(meta.step, 2);
    let vars = net.online().variables();
    let conv1 = t.iter().find(|(n, _)| n == "conv1.weight").unwrap();
    assert!(vars["backbone.conv1.weight"].equal(&conv1.1));
}
