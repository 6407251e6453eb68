//! The exported backbone is a torchvision `resnet50` state dict: the venv's
//! PyTorch loads it with `load_state_dict(strict=False)`, missing only
//! `fc.weight` and `fc.bias`, with no unexpected keys, and torchvision's
//! network (without avgpool and fc) then computes the Rust backbone's
//! feature map.

use std::path::PathBuf;
use std::process::Command;

use model::backbone::Backbone;
use model::checkpoint::export_backbone;
use model::config::ModelConfig;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

const SCRIPT: &str = r#"
import json, sys
import numpy as np, torch, torchvision
from safetensors.numpy import load_file
sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in load_file(sys.argv[1]).items()}
m = torchvision.models.resnet50(weights=None)
r = m.load_state_dict(sd, strict=False)
m.eval().double()  # f64: the comparison cannot depend on the CPU's kernel set
x = torch.from_numpy(load_file(sys.argv[2])["x"]).double()
with torch.no_grad():
    y = torch.nn.Sequential(*list(m.children())[:-2])(x)
from safetensors.numpy import save_file
save_file({"y": y.numpy()}, sys.argv[3])
print(json.dumps({"missing": sorted(r.missing_keys), "unexpected": sorted(r.unexpected_keys),
                  "tracked": int(m.bn1.num_batches_tracked)}))
"#;

fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python")
}

#[test]
fn exported_backbone_loads_into_torchvision_resnet50() {
    tch::manual_seed(0);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let net = Backbone::new(vs.root() / "backbone", &ModelConfig::paper());
    // Move the running statistics off their defaults so the eval forward
    // really reads them.
    let x = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
    let _ = tch::no_grad(|| net.forward_t(&x, true));
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("resnet50.safetensors");
    export_backbone(&vs, &weights, 1).unwrap();
    let input = dir.path().join("x.safetensors");
    let x1 = x.narrow(0, 0, 1).contiguous();
    Tensor::write_safetensors(&[("x", &x1)], &input).unwrap();
    let output = dir.path().join("y.safetensors");

    let out = Command::new(python()).arg("-c").arg(SCRIPT).args([&weights, &input, &output]).output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["missing"], serde_json::json!(["fc.bias", "fc.weight"]), "{report}");
    assert_eq!(report["unexpected"], serde_json::json!([]), "{report}");
    assert_eq!(report["tracked"], 1);

    // Both forwards in f64 (the exported file above is f32, as users get it).
    let want = Tensor::read_safetensors(&output).unwrap().remove(0).1;
    assert_eq!(want.kind(), Kind::Double);
    vs.double();
    let got = tch::no_grad(|| net.forward_t(&x1.to_kind(Kind::Double), false));
    assert_eq!(got.size(), [1, 2048, 2, 2]);
    let err = (&got - &want).abs().max().double_value(&[]) / want.abs().max().double_value(&[]);
    assert!(err < 1e-9, "torchvision and Rust ResNet-50 differ: {err:e}");
}
