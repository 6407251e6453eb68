//! Typed model configuration (paper section 3 and 4.2; SPEC.md section 3).
//!
//! [`ModelConfig::default()`] is the paper's model: ResNet-50 at 256x256,
//! BYOL heads 2048 -> 4096 -> 256, tau 0.99, k = 50, r = 40 px, gamma = 0.6,
//! alpha = 0.05. Sizes the paper leaves open (the Transformer, the refiner
//! head D, the MCI hidden width) are decisions recorded in docs/model.md.
//!
//! # Presets
//! * `paper`: the defaults.
//! * `tiny`: the same code paths at CPU-test scale: 64x64 input, a ResNet
//!   with one bottleneck per stage and base width 4 (128 feature channels,
//!   2x2 feature map), small heads and Transformer. Lengths given in image
//!   pixels (`r`, `sigma_max`) scale with the input side: `r = 40 * 64/256 =
//!   10 px`, `sigma_max = 4 * 64/256 = 1 px`, so a mask covers the same
//!   fraction of the face as in the paper. `k`, `gamma`, `tau` and `alpha`
//!   are unchanged.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// The preset names [`ModelConfig::preset`] knows.
pub const PRESETS: &str = "paper, tiny";

/// The whole model: backbone, MFDC, MFRR, MCI and the loss weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Side of the square input image, pixels (paper: 256).
    pub image_size: i64,
    /// The ResNet backbone q.
    pub backbone: BackboneConfig,
    /// MFDC, the BYOL-style macro dual-stream contrast (section 3.1).
    pub mfdc: MfdcConfig,
    /// MFRR, landmark refinement, masks and reconstruction (section 3.2).
    pub mfrr: MfrrConfig,
    /// MCI, the macro-micro interaction (section 3.3).
    pub mci: MciConfig,
    /// Run the forward passes under CUDA autocast to bfloat16 when the
    /// model's device is CUDA (losses are computed in f32); ignored on CPU.
    pub bf16_autocast: bool,
}

/// ResNet layout (torchvision Bottleneck, expansion 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackboneConfig {
    /// Channels of the first stage's bottleneck (torchvision: 64); stage i
    /// uses `width * 2^i`, the output has `width * 8 * 4` channels.
    pub width: i64,
    /// Bottleneck blocks per stage (ResNet-50: 3, 4, 6, 3).
    pub blocks: [i64; 4],
}

/// MFDC heads and EMA (eq. 1-2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfdcConfig {
    /// Hidden width of the projector g and the predictor f, units (BYOL: 4096).
    pub hidden: i64,
    /// Output width D of g and f, units (BYOL: 256).
    pub dim: i64,
    /// EMA decay tau of eq. 1, constant (paper: 0.99).
    pub tau: f64,
}

/// Where the per-sample mask decision is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskMode {
    /// One Bernoulli(gamma) draw per sample (SPEC: "per sample").
    PerSample,
    /// One Bernoulli(gamma) draw for the whole batch (ablation).
    PerBatch,
}

/// MFRR: landmark cascade (eq. 3), masks (eq. 4), reconstruction (eq. 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfrrConfig {
    /// Ablation switch: false drops L_d and L_r (and L_c, which needs F_mic).
    pub enabled: bool,
    /// Cascade length k: p_1 plus k - 1 refinement steps (paper: 50).
    pub k: i64,
    /// Jitter standard deviation of the first refinement step, image pixels
    /// at `image_size` (SPEC: 4 px at 256); decreases linearly to 0 at the
    /// last step. 0 gives the literal reading of eq. 3.
    pub sigma_max: f64,
    /// Hidden width of the refiner head D, units.
    pub refiner_hidden: i64,
    /// Side r of each landmark's square mask, image pixels at `image_size`
    /// (paper: 40 at 256).
    pub r: f64,
    /// Probability gamma that the masks are applied (paper: 0.6).
    pub gamma: f64,
    /// Per-sample or per-batch mask decision.
    pub mask_mode: MaskMode,
    /// The reconstruction Transformer T.
    pub transformer: TransformerConfig,
}

/// The classical encoder-decoder Transformer of MFRR (post-norm, ReLU, like
/// `torch.nn.Transformer`'s defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformerConfig {
    /// Token width d_model, units (Vaswani et al. base: 512).
    pub d_model: i64,
    /// Attention heads (base: 8); must divide `d_model`.
    pub heads: i64,
    /// Encoder layers (base: 6).
    pub encoder_layers: i64,
    /// Decoder layers (base: 6).
    pub decoder_layers: i64,
    /// Feed-forward width, units (base: 2048).
    pub ff_dim: i64,
    /// Dropout probability in training mode (base: 0.1).
    pub dropout: f64,
}

/// MCI heads P_M, P_R and the weight of L_c (eq. 6-7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MciConfig {
    /// Ablation switch: false drops L_c.
    pub enabled: bool,
    /// Hidden width of P_M and P_R, units.
    pub hidden: i64,
    /// Output width D' of P_M and P_R, units (SPEC: 256).
    pub dim: i64,
    /// Weight alpha of L_c in eq. 7 (paper: 0.05).
    pub alpha: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            image_size: 256,
            backbone: BackboneConfig::default(),
            mfdc: MfdcConfig::default(),
            mfrr: MfrrConfig::default(),
            mci: MciConfig::default(),
            bf16_autocast: false,
        }
    }
}

impl Default for BackboneConfig {
    fn default() -> Self {
        Self { width: 64, blocks: [3, 4, 6, 3] }
    }
}

impl Default for MfdcConfig {
    fn default() -> Self {
        Self { hidden: 4096, dim: 256, tau: 0.99 }
    }
}

impl Default for MfrrConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            k: 50,
            sigma_max: 4.0,
            refiner_hidden: 256,
            r: 40.0,
            gamma: 0.6,
            mask_mode: MaskMode::PerSample,
            transformer: TransformerConfig::default(),
        }
    }
}

impl Default for TransformerConfig {
    fn default() -> Self {
        Self { d_model: 512, heads: 8, encoder_layers: 6, decoder_layers: 6, ff_dim: 2048, dropout: 0.1 }
    }
}

impl Default for MciConfig {
    fn default() -> Self {
        Self { enabled: true, hidden: 2048, dim: 256, alpha: 0.05 }
    }
}

impl ModelConfig {
    /// The paper's model (= `Default`).
    pub fn paper() -> Self {
        Self::default()
    }

    /// The CPU-test model: same code paths, 64x64 input, lengths in pixels
    /// scaled by 64/256 (see the module docs).
    pub fn tiny() -> Self {
        let image_size = 64;
        let scale = image_size as f64 / 256.0;
        let paper = MfrrConfig::default();
        Self {
            image_size,
            backbone: BackboneConfig { width: 4, blocks: [1, 1, 1, 1] },
            mfdc: MfdcConfig { hidden: 64, dim: 32, tau: 0.99 },
            mfrr: MfrrConfig {
                refiner_hidden: 32,
                sigma_max: paper.sigma_max * scale,
                r: paper.r * scale,
                transformer: TransformerConfig {
                    d_model: 32,
                    heads: 4,
                    encoder_layers: 1,
                    decoder_layers: 1,
                    ff_dim: 64,
                    dropout: 0.1,
                },
                ..paper
            },
            mci: MciConfig { hidden: 64, dim: 32, ..MciConfig::default() },
            bf16_autocast: false,
        }
    }

    /// A preset by name (`paper` or `tiny`).
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "paper" => Ok(Self::paper()),
            "tiny" => Ok(Self::tiny()),
            _ => Err(ModelError::UnknownPreset { name: name.to_string(), expected: PRESETS }),
        }
    }

    /// Channels C of the backbone's feature map (`width * 8 * 4`).
    pub fn feature_channels(&self) -> i64 {
        self.backbone.width * 8 * 4
    }

    /// Side H = W of the backbone's feature map (stride 32).
    pub fn feature_side(&self) -> i64 {
        self.image_size / 32
    }

    /// Checks what the networks rely on; every constructor calls it.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::InvalidConfig(m));
        if self.image_size < 32 || self.image_size % 32 != 0 {
            return bad(format!("image_size {} must be a positive multiple of 32", self.image_size));
        }
        if self.backbone.width < 1 || self.backbone.blocks.iter().any(|&b| b < 1) {
            return bad(format!("backbone {:?} needs width >= 1 and >= 1 block per stage", self.backbone));
        }
        if !(0.0..=1.0).contains(&self.mfdc.tau) {
            return bad(format!("mfdc.tau {} must lie in [0, 1]", self.mfdc.tau));
        }
        let m = &self.mfrr;
        if m.k < 2 {
            return bad(format!("mfrr.k {} must be >= 2 (p_1 plus at least one refinement)", m.k));
        }
        if !(0.0..=1.0).contains(&m.gamma) || m.sigma_max < 0.0 || m.r < 0.0 {
            return bad(format!(
                "mfrr gamma {} must lie in [0, 1], sigma_max {} and r {} >= 0",
                m.gamma, m.sigma_max, m.r
            ));
        }
        let t = &m.transformer;
        if t.heads < 1 || t.d_model % t.heads != 0 || t.encoder_layers < 1 || t.decoder_layers < 1 {
            return bad(format!("transformer {t:?}: heads must divide d_model, >= 1 layer each"));
        }
        if !(0.0..1.0).contains(&t.dropout) {
            return bad(format!("transformer dropout {} must lie in [0, 1)", t.dropout));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_defaults_are_the_papers_values() {
        let c = ModelConfig::paper();
        assert_eq!((c.image_size, c.feature_channels(), c.feature_side()), (256, 2048, 8));
        assert_eq!((c.mfrr.k, c.mfrr.r, c.mfrr.gamma, c.mfdc.tau, c.mci.alpha), (50, 40.0, 0.6, 0.99, 0.05));
        c.validate().unwrap();
    }

    #[test]
    fn tiny_scales_pixel_lengths_with_the_image() {
        let t = ModelConfig::tiny();
        assert_eq!((t.image_size, t.feature_side(), t.feature_channels()), (64, 2, 128));
        assert_eq!((t.mfrr.r, t.mfrr.sigma_max, t.mfrr.k), (10.0, 1.0, 50));
        t.validate().unwrap();
    }

    #[test]
    fn config_round_trips_through_json_and_rejects_typos() {
        let t = ModelConfig::tiny();
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<ModelConfig>(&s).unwrap(), t);
        assert!(serde_json::from_str::<ModelConfig>(r#"{"imag_size": 64}"#).is_err());
        assert!(ModelConfig::preset("huge").is_err());
    }
}
