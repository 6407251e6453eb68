//! Typed model configuration (paper section 3 and 4.2; docs/method.md).
//!
//! [`ModelConfig::default()`] is the paper's model: ResNet-50 at 256x256,
//! BYOL heads 2048 -> 4096 -> 256, tau 0.99, k = 50, r = 40 px, gamma = 0.6,
//! alpha = 0.05. Sizes the paper leaves open (the Transformer, the refiner
//! head D, the MCI hidden width) are decisions recorded in docs/model.md.
//!
//! # Presets
//! * `paper`: the defaults.
//! * `small`: CPU experiments that exercise every mechanism as the paper's
//!   preset does: 128x128 input, a ResNet with one bottleneck per stage,
//!   base width 8 (256 channels) and output stride 16 (layer4 dilated), so
//!   the map is 8x8 like the paper's and each cell covers 16 px; `r = 20`,
//!   `sigma_max = 2` px (the paper's lengths x 128/256), so the masks cover
//!   the same cells of the 8x8 map as the paper's at 256 px (docs/model.md
//!   measures it), `loc_unit = 4` px; a 2+2-layer Transformer of width 64.
//! * `tiny`: the same code paths at CPU-test scale: 64x64 input, a ResNet
//!   with one bottleneck per stage and base width 4 (128 feature channels,
//!   2x2 feature map), small heads and Transformer. Lengths given in image
//!   pixels (`r`, `sigma_max`, `loc_unit`) scale with the input side:
//!   `r = 40 * 64/256 = 10 px`, `sigma_max = 1 px`, `loc_unit = 2 px`, so a
//!   mask covers the same
//!   fraction of the face as in the paper. `k`, `gamma`, `tau` and `alpha`
//!   are unchanged.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

mod mfrr;
pub use mfrr::{CascadeTarget, Detector, LdScale, MaskAt, MaskMode, MfrrConfig, TransformerConfig};

/// The preset names [`ModelConfig::preset`] knows.
pub const PRESETS: &str = "paper, small, tiny";

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
    /// Input pixels per feature-map cell: 32 (torchvision's ResNet), or 16
    /// (layer4 dilated instead of strided, torchvision's
    /// `replace_stride_with_dilation=[False, False, True]`).
    pub output_stride: i64,
}

/// MFDC heads and EMA (eq. 1-2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfdcConfig {
    /// Ablation switch: false drops L_s (no augmented views are run; the
    /// heads are built but never trained). For measuring MFRR's signal
    /// alone; MCI needs MFDC's macro stream.
    pub enabled: bool,
    /// Hidden width of the projector g and the predictor f, units (BYOL: 4096).
    pub hidden: i64,
    /// Output width D of g and f, units (BYOL: 256).
    pub dim: i64,
    /// EMA decay tau of eq. 1, constant (paper: 0.99).
    pub tau: f64,
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
        Self { width: 64, blocks: [3, 4, 6, 3], output_stride: 32 }
    }
}

impl Default for MfdcConfig {
    fn default() -> Self {
        Self { enabled: true, hidden: 4096, dim: 256, tau: 0.99 }
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
            backbone: BackboneConfig { width: 4, blocks: [1, 1, 1, 1], output_stride: 32 },
            mfdc: MfdcConfig { hidden: 64, dim: 32, ..MfdcConfig::default() },
            mfrr: MfrrConfig {
                refiner_hidden: 32,
                sigma_max: paper.sigma_max * scale,
                loc_unit: paper.loc_unit * scale,
                loc_channels: 16,
                loc_embed: 8,
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

    /// The CPU-experiment model (see the module docs): 128x128, 8x8 map.
    pub fn small() -> Self {
        let image_size = 128;
        let scale = image_size as f64 / 256.0;
        let paper = MfrrConfig::default();
        Self {
            image_size,
            backbone: BackboneConfig { width: 8, blocks: [1, 1, 1, 1], output_stride: 16 },
            mfdc: MfdcConfig { hidden: 512, dim: 128, ..MfdcConfig::default() },
            mfrr: MfrrConfig {
                refiner_hidden: 64,
                sigma_max: paper.sigma_max * scale,
                loc_unit: paper.loc_unit * scale,
                r: paper.r * scale,
                transformer: TransformerConfig {
                    d_model: 64,
                    heads: 4,
                    encoder_layers: 2,
                    decoder_layers: 2,
                    ff_dim: 128,
                    dropout: 0.1,
                },
                ..paper
            },
            mci: MciConfig { hidden: 256, dim: 64, ..MciConfig::default() },
            bf16_autocast: false,
        }
    }

    /// A preset by name (`paper`, `small` or `tiny`).
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "paper" => Ok(Self::paper()),
            "small" => Ok(Self::small()),
            "tiny" => Ok(Self::tiny()),
            _ => Err(ModelError::UnknownPreset { name: name.to_string(), expected: PRESETS }),
        }
    }

    /// Channels C of the backbone's feature map (`width * 8 * 4`).
    pub fn feature_channels(&self) -> i64 {
        self.backbone.width * 8 * 4
    }

    /// Side H = W of the backbone's feature map (`image_size /
    /// backbone.output_stride`).
    pub fn feature_side(&self) -> i64 {
        self.image_size / self.backbone.output_stride
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
        if ![16, 32].contains(&self.backbone.output_stride) {
            return bad(format!("backbone.output_stride {} must be 16 or 32", self.backbone.output_stride));
        }
        if self.mci.enabled && self.mfrr.enabled && !(self.mfdc.enabled && self.mfrr.reconstruct) {
            return bad(
                "mci.enabled compares MFDC's macro stream with MFRR's reconstruction: it needs mfdc.enabled and \
                 mfrr.reconstruct (or set mci.enabled = false)"
                    .to_string(),
            );
        }
        if !self.mfdc.enabled && !self.mfrr.enabled {
            return bad("mfdc.enabled and mfrr.enabled are both false: no loss term is left".to_string());
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
        if m.detector == Detector::Locate && (m.loc_unit <= 0.0 || m.loc_channels < 1 || m.loc_embed < 0) {
            return bad(format!(
                "mfrr.detector = \"locate\" needs loc_unit > 0 (got {}), loc_channels >= 1 (got {}) and loc_embed >= 0 (got {})",
                m.loc_unit, m.loc_channels, m.loc_embed
            ));
        }
        if m.ld_scale == LdScale::Unit && m.detector == Detector::Denoise {
            return bad(
                "mfrr.ld_scale = \"unit\" is the locate detector's; the denoise detector takes \"jitter\" or \"pixel_sum\""
                    .to_string(),
            );
        }
        if m.ld_scale == LdScale::Jitter && m.detector == Detector::Locate {
            return bad(
                "mfrr.ld_scale = \"jitter\" is the denoise detector's; the locate detector takes \"unit\" or \"pixel_sum\" \
                 (a config or checkpoint written before the locate detector existed: add mfrr.detector = \"denoise\")"
                    .to_string(),
            );
        }
        if m.ld_scale == LdScale::Jitter && m.sigma_max <= 0.0 {
            return bad(format!(
                "mfrr.ld_scale = \"jitter\" divides by sigma_max^2, but sigma_max is {}: use ld_scale = \"pixel_sum\"",
                m.sigma_max
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
        assert_eq!((t.mfrr.r, t.mfrr.sigma_max, t.mfrr.loc_unit, t.mfrr.k), (10.0, 1.0, 2.0, 50));
        t.validate().unwrap();
    }

    #[test]
    fn small_has_the_papers_map_and_mask_geometry_at_half_the_size() {
        let (s, p) = (ModelConfig::small(), ModelConfig::paper());
        assert_eq!((s.image_size, s.feature_side(), s.feature_channels()), (128, 8, 256));
        // Same cells, same square side in cells: r / stride.
        let cell = |c: &ModelConfig| c.image_size as f64 / c.feature_side() as f64;
        assert_eq!(s.mfrr.r / cell(&s), p.mfrr.r / cell(&p));
        assert_eq!((s.mfrr.sigma_max, s.mfrr.k, s.mfrr.gamma), (2.0, 50, 0.6));
        s.validate().unwrap();
        let mut bad = s.clone();
        bad.backbone.output_stride = 8;
        assert!(bad.validate().unwrap_err().to_string().contains("output_stride"));
        bad = s.clone();
        bad.mfrr.detector = Detector::Denoise;
        bad.mfrr.ld_scale = LdScale::Jitter;
        bad.mfrr.sigma_max = 0.0;
        assert!(bad.validate().unwrap_err().to_string().contains("pixel_sum"));
        // Each scale-free form belongs to its detector.
        bad.mfrr.sigma_max = 2.0;
        bad.validate().unwrap();
        bad.mfrr.ld_scale = LdScale::Unit;
        assert!(bad.validate().unwrap_err().to_string().contains("denoise"));
        bad = s;
        bad.mfrr.ld_scale = LdScale::Jitter;
        assert!(bad.validate().unwrap_err().to_string().contains("locate"));
        bad.mfrr.ld_scale = LdScale::Unit;
        bad.mfrr.loc_unit = 0.0;
        assert!(bad.validate().unwrap_err().to_string().contains("loc_unit"));
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
