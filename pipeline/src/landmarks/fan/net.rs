//! The 2D-FAN network (Bulat & Tzimiropoulos, "How far are we from solving
//! the 2D & 3D Face Alignment problem?", ICCV 2017), as face_alignment's
//! `models.py` builds it: a stem, then `num_modules` stacked hourglasses
//! (Newell et al. 2016) of `ConvBlock`s (the hierarchical, parallel,
//! multi-scale block of Bulat & Tzimiropoulos 2017), each stack predicting 68
//! heatmaps at 64x64. Variable paths equal face_alignment's state-dict names
//! (`m0.b1_4.bn1.running_mean`, `top_m_0`, `conv_last0`, `bn_end0`, `l0`,
//! `bl0`, `al0`), so converted weights load by name.

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::Tensor;

/// Heatmaps (landmarks) the network predicts.
pub const FAN_POINTS: i64 = 68;

/// Down-sampling between scales. Every 2DFAN4 file face_alignment publishes
/// since January 2018 (the hashed `.pth.tar` and the TorchScript `.zip`) was
/// trained with average pooling; only the original 2017 file used max
/// pooling. `scripts/convert_fan.py` records which (default: average).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    /// `max_pool2d(2, 2)`.
    Max,
    /// `avg_pool2d(2, 2)`.
    Avg,
}

/// Shape of the network. `Default` is 2DFAN4 as face_alignment publishes it:
/// 4 stacks, depth 4, width 256, average pooling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FanConfig {
    /// Stacked hourglasses (2DFAN4: 4).
    pub num_modules: usize,
    /// Hourglass depth: scales below the input's (face_alignment: 4).
    pub hg_depth: usize,
    /// Channels inside the hourglasses (256); the stem uses 1/4 and 1/2.
    /// Smaller widths exist only for tests.
    pub features: i64,
    /// Down-sampling.
    pub pool: Pool,
}

impl Default for FanConfig {
    fn default() -> Self {
        Self { num_modules: 4, hg_depth: 4, features: 256, pool: Pool::Avg }
    }
}

fn pool2(xs: &Tensor, pool: Pool) -> Tensor {
    match pool {
        Pool::Max => xs.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false),
        Pool::Avg => xs.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None),
    }
}

fn bn(p: nn::Path, dim: i64) -> nn::BatchNorm {
    nn::batch_norm2d(p, dim, Default::default())
}

fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, bias: bool) -> nn::Conv2D {
    let cfg = nn::ConvConfig { padding: k / 2, bias, ..Default::default() };
    nn::conv2d(p, c_in, c_out, k, cfg)
}

/// face_alignment's `ConvBlock`: three pre-activated 3x3 convolutions of
/// widths out/2, out/4, out/4, concatenated, plus a (projected) residual.
#[derive(Debug)]
struct ConvBlock {
    bn1: nn::BatchNorm,
    conv1: nn::Conv2D,
    bn2: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn3: nn::BatchNorm,
    conv3: nn::Conv2D,
    /// `downsample.0` (BN), `.1` (ReLU, no weights), `.2` (1x1 conv).
    downsample: Option<(nn::BatchNorm, nn::Conv2D)>,
}

impl ConvBlock {
    fn new(p: nn::Path, c_in: i64, c_out: i64) -> Self {
        let (half, quarter) = (c_out / 2, c_out / 4);
        let downsample = (c_in != c_out).then(|| {
            let d = &p / "downsample";
            (bn(&d / "0", c_in), conv(&d / "2", c_in, c_out, 1, false))
        });
        Self {
            bn1: bn(&p / "bn1", c_in),
            conv1: conv(&p / "conv1", c_in, half, 3, false),
            bn2: bn(&p / "bn2", half),
            conv2: conv(&p / "conv2", half, quarter, 3, false),
            bn3: bn(&p / "bn3", quarter),
            conv3: conv(&p / "conv3", quarter, quarter, 3, false),
            downsample,
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let out1 = xs.apply_t(&self.bn1, false).relu().apply(&self.conv1);
        let out2 = out1.apply_t(&self.bn2, false).relu().apply(&self.conv2);
        let out3 = out2.apply_t(&self.bn3, false).relu().apply(&self.conv3);
        let residual = match &self.downsample {
            Some((b, c)) => xs.apply_t(b, false).relu().apply(c),
            None => xs.shallow_clone(),
        };
        Tensor::cat(&[out1, out2, out3], 1) + residual
    }
}

/// One hourglass level: `b1_L` (skip), pool, `b2_L`, level L-1 (or
/// `b2_plus_1` at the bottom), `b3_L`, nearest upsample, sum.
#[derive(Debug)]
struct Level {
    b1: ConvBlock,
    b2: ConvBlock,
    inner: Inner,
    b3: ConvBlock,
}

#[derive(Debug)]
enum Inner {
    Level(Box<Level>),
    Bottom(Box<ConvBlock>),
}

#[derive(Debug)]
struct HourGlass {
    top: Level,
    pool: Pool,
}

impl HourGlass {
    fn new(p: nn::Path, depth: usize, features: i64, pool: Pool) -> Self {
        fn level(p: &nn::Path, l: usize, f: i64) -> Level {
            let block = |name: String| ConvBlock::new(p / name, f, f);
            let b1 = block(format!("b1_{l}"));
            let b2 = block(format!("b2_{l}"));
            let inner = if l > 1 {
                Inner::Level(Box::new(level(p, l - 1, f)))
            } else {
                Inner::Bottom(Box::new(block(format!("b2_plus_{l}"))))
            };
            Level { b1, b2, inner, b3: block(format!("b3_{l}")) }
        }
        Self { top: level(&p, depth, features), pool }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        fn run(level: &Level, xs: &Tensor, pool: Pool) -> Tensor {
            let up1 = level.b1.forward(xs);
            let low1 = level.b2.forward(&pool2(xs, pool));
            let low2 = match &level.inner {
                Inner::Level(l) => run(l, &low1, pool),
                Inner::Bottom(b) => b.forward(&low1),
            };
            let low3 = level.b3.forward(&low2);
            let (h, w) = (xs.size()[2], xs.size()[3]);
            up1 + low3.upsample_nearest2d([h, w], 2.0, 2.0)
        }
        run(&self.top, xs, self.pool)
    }
}

/// One stack: hourglass `m{i}`, `top_m_{i}`, `conv_last{i}` + `bn_end{i}`,
/// heatmap head `l{i}`, and (all but the last) `bl{i}`/`al{i}` feeding the
/// next stack.
#[derive(Debug)]
struct Stack {
    hg: HourGlass,
    top: ConvBlock,
    conv_last: nn::Conv2D,
    bn_end: nn::BatchNorm,
    head: nn::Conv2D,
    remap: Option<(nn::Conv2D, nn::Conv2D)>,
}

/// 2D-FAN.
#[derive(Debug)]
pub struct Fan {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: ConvBlock,
    conv3: ConvBlock,
    conv4: ConvBlock,
    stacks: Vec<Stack>,
    pool: Pool,
}

impl Fan {
    /// Builds the network's variables under `p` (normally the root).
    pub fn new(p: &nn::Path, cfg: &FanConfig) -> Self {
        let f = cfg.features;
        let stem = nn::ConvConfig { stride: 2, padding: 3, ..Default::default() };
        let stacks = (0..cfg.num_modules)
            .map(|i| Stack {
                hg: HourGlass::new(p / format!("m{i}"), cfg.hg_depth, f, cfg.pool),
                top: ConvBlock::new(p / format!("top_m_{i}"), f, f),
                conv_last: conv(p / format!("conv_last{i}"), f, f, 1, true),
                bn_end: bn(p / format!("bn_end{i}"), f),
                head: conv(p / format!("l{i}"), f, FAN_POINTS, 1, true),
                remap: (i + 1 < cfg.num_modules).then(|| {
                    (conv(p / format!("bl{i}"), f, f, 1, true), conv(p / format!("al{i}"), FAN_POINTS, f, 1, true))
                }),
            })
            .collect();
        Self {
            conv1: nn::conv2d(p / "conv1", 3, f / 4, 7, stem),
            bn1: bn(p / "bn1", f / 4),
            conv2: ConvBlock::new(p / "conv2", f / 4, f / 2),
            conv3: ConvBlock::new(p / "conv3", f / 2, f / 2),
            conv4: ConvBlock::new(p / "conv4", f / 2, f),
            stacks,
            pool: cfg.pool,
        }
    }

    /// Heatmaps of every stack (inference mode: batch norm uses its running
    /// statistics).
    ///
    /// # Shapes
    /// `xs`: [B, 3, 256, 256], RGB in [0, 1]; returns `num_modules` tensors
    /// [B, 68, 64, 64].
    pub fn forward_all(&self, xs: &Tensor) -> Vec<Tensor> {
        let xs = xs.apply(&self.conv1).apply_t(&self.bn1, false).relu(); // [B, f/4, 128, 128]
        let xs = pool2(&self.conv2.forward(&xs), self.pool); // [B, f/2, 64, 64]
        let mut previous = self.conv4.forward(&self.conv3.forward(&xs)); // [B, f, 64, 64]
        let mut outputs = Vec::with_capacity(self.stacks.len());
        for s in &self.stacks {
            let ll = s.top.forward(&s.hg.forward(&previous));
            let ll = ll.apply(&s.conv_last).apply_t(&s.bn_end, false).relu();
            let heatmaps = ll.apply(&s.head); // [B, 68, 64, 64]
            if let Some((bl, al)) = &s.remap {
                previous = previous + ll.apply(bl) + heatmaps.apply(al);
            }
            outputs.push(heatmaps);
        }
        outputs
    }

    /// Heatmaps of the last stack, the ones face_alignment decodes.
    ///
    /// # Shapes
    /// `xs`: [B, 3, 256, 256] in [0, 1] -> [B, 68, 64, 64].
    pub fn forward(&self, xs: &Tensor) -> Tensor {
        self.forward_all(xs).pop().unwrap_or_else(|| Tensor::zeros([0], (xs.kind(), xs.device())))
    }
}
