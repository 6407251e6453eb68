//! The backbone q (paper section 3, "ResNet50 as backbone"; docs/method.md):
//! a torchvision-layout ResNet with Bottleneck blocks (v1.5: stride on the
//! 3x3 conv), without the average pool and the fc layer.
//!
//! `backbone.output_stride = 16` is torchvision's
//! `replace_stride_with_dilation = [False, False, True]`: layer4 keeps
//! stride 1 and dilates its later 3x3 convolutions by 2 (DeepLab), so the
//! map is S/16 instead of S/32 with the same variables. The `small` preset
//! uses it to get the paper's 8x8 map (and mask geometry) at 128 px.
//!
//! Variables carry torchvision's names (`conv1.weight`, `bn1.running_mean`,
//! `layer1.0.conv1.weight`, `layer2.0.downsample.0.weight`, ...), so the
//! exported backbone loads into `torchvision.models.resnet50` and the EMA
//! pairs online and target variables by name.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::config::ModelConfig;
use crate::dist::norm::Norm;

/// torchvision's Bottleneck expansion.
const EXPANSION: i64 = 4;

fn conv(p: nn::Path, c_in: i64, c_out: i64, ksize: i64, stride: i64, padding: i64) -> nn::Conv2D {
    dilated_conv(p, c_in, c_out, ksize, stride, padding, 1)
}

fn dilated_conv(
    p: nn::Path,
    c_in: i64,
    c_out: i64,
    ksize: i64,
    stride: i64,
    padding: i64,
    dilation: i64,
) -> nn::Conv2D {
    // torchvision: no conv bias, kaiming_normal(fan_out, relu) init.
    let fan_out = (c_out * ksize * ksize) as f64;
    let cfg = nn::ConvConfig {
        stride,
        padding,
        dilation,
        bias: false,
        ws_init: nn::Init::Randn { mean: 0.0, stdev: (2.0 / fan_out).sqrt() },
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, ksize, cfg)
}

/// BatchNorm2d with torch's initialisation (weight 1, bias 0), local,
/// synchronised or frozen while training ([`Norm`]).
pub(crate) fn bn2d(p: nn::Path, c: i64) -> Norm {
    Norm::new2d(p, c)
}

/// One torchvision Bottleneck block.
#[derive(Debug)]
struct Bottleneck {
    conv1: nn::Conv2D,
    bn1: Norm,
    conv2: nn::Conv2D,
    bn2: Norm,
    conv3: nn::Conv2D,
    bn3: Norm,
    downsample: Option<(nn::Conv2D, Norm)>,
}

impl Bottleneck {
    /// torchvision's `Bottleneck(c_in, width, stride, dilation=dilation)`:
    /// the 3x3 conv has padding = dilation.
    fn new(p: nn::Path, c_in: i64, width: i64, stride: i64, dilation: i64) -> Self {
        let c_out = width * EXPANSION;
        let downsample = (stride != 1 || c_in != c_out)
            .then(|| (conv(&p / "downsample" / 0, c_in, c_out, 1, stride, 0), bn2d(&p / "downsample" / 1, c_out)));
        Self {
            conv1: conv(&p / "conv1", c_in, width, 1, 1, 0),
            bn1: bn2d(&p / "bn1", width),
            conv2: dilated_conv(&p / "conv2", width, width, 3, stride, dilation, dilation),
            bn2: bn2d(&p / "bn2", width),
            conv3: conv(&p / "conv3", width, c_out, 1, 1, 0),
            bn3: bn2d(&p / "bn3", c_out),
            downsample,
        }
    }
}

impl ModuleT for Bottleneck {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = xs.apply(&self.conv1).apply_t(&self.bn1, train).relu();
        let ys = ys.apply(&self.conv2).apply_t(&self.bn2, train).relu();
        let ys = ys.apply(&self.conv3).apply_t(&self.bn3, train);
        let identity = match &self.downsample {
            Some((c, b)) => xs.apply(c).apply_t(b, train),
            None => xs.shallow_clone(),
        };
        (ys + identity).relu()
    }
}

/// ResNet feature extractor q: image -> stride-32 (or 16) feature map.
#[derive(Debug)]
pub struct Backbone {
    conv1: nn::Conv2D,
    bn1: Norm,
    layers: Vec<Vec<Bottleneck>>,
    channels: i64,
}

impl Backbone {
    /// Builds the backbone under `p` (pass the root, or `root / "backbone"`).
    /// ResNet-50 for the paper preset; `cfg.backbone` sets width and depth.
    pub fn new(p: nn::Path, cfg: &ModelConfig) -> Self {
        let w = cfg.backbone.width;
        let conv1 = conv(&p / "conv1", 3, w, 7, 2, 3);
        let bn1 = bn2d(&p / "bn1", w);
        let mut c_in = w;
        let mut layers = Vec::with_capacity(4);
        // torchvision's `_make_layer(dilate=True)` for layer4 at output stride
        // 16: stride 1, the first block at the previous dilation (1), the
        // others at 2.
        let dilate_layer4 = cfg.backbone.output_stride == 16;
        for (i, &n) in cfg.backbone.blocks.iter().enumerate() {
            let width = w << i;
            let dilated = i == 3 && dilate_layer4;
            let stride = if i == 0 || dilated { 1 } else { 2 };
            let lp = &p / format!("layer{}", i + 1);
            let blocks: Vec<Bottleneck> = (0..n)
                .map(|b| {
                    let dilation = if dilated && b > 0 { 2 } else { 1 };
                    let block = Bottleneck::new(&lp / b, c_in, width, if b == 0 { stride } else { 1 }, dilation);
                    c_in = width * EXPANSION;
                    block
                })
                .collect();
            layers.push(blocks);
        }
        Self { conv1, bn1, layers, channels: c_in }
    }

    /// Output channels C (2048 for ResNet-50).
    pub fn channels(&self) -> i64 {
        self.channels
    }
}

impl ModuleT for Backbone {
    /// `train` selects batch statistics (and updates running statistics) in
    /// every BatchNorm.
    ///
    /// # Shapes
    /// * `xs`: `[B, 3, S, S]`, normalised RGB, S = `image_size`.
    /// * returns `[B, C, S/o, S/o]`, o = `backbone.output_stride` (ResNet-50
    ///   at 256: `[B, 2048, 8, 8]`).
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut ys = xs.apply(&self.conv1).apply_t(&self.bn1, train).relu(); // [B, w, S/2, S/2]
        ys = ys.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false); // [B, w, S/4, S/4]
        for layer in &self.layers {
            for block in layer {
                ys = block.forward_t(&ys, train);
            }
        }
        ys // [B, C, S/o, S/o]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn resnet50_has_torchvisions_names_and_size() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Backbone::new(vs.root(), &ModelConfig::paper());
        let vars = vs.variables();
        for name in ["conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer4.2.bn3.bias"] {
            assert!(vars.contains_key(name), "{name} missing");
        }
        assert!(vars.contains_key("layer2.0.downsample.0.weight"));
        assert!(vars.contains_key("layer2.0.downsample.1.running_mean"));
        assert!(!vars.contains_key("layer2.1.downsample.0.weight"));
        // torchvision resnet50 without fc: 25,557,032 - 2,049,000 parameters.
        let params: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
        assert_eq!(params, 23_508_032);
        assert_eq!(net.channels(), 2048);
    }

    #[test]
    fn tiny_backbone_maps_64px_to_a_2x2_map() {
        let cfg = ModelConfig::tiny();
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Backbone::new(vs.root(), &cfg);
        let xs = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        assert_eq!(net.forward_t(&xs, true).size(), [2, cfg.feature_channels(), 2, 2]);
    }
}
