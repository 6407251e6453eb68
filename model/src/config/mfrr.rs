//! MFRR's configuration (paper section 3.2, eq. 3-5): the landmark
//! detector, the masks and the reconstruction Transformer, with the choices
//! docs/method.md records where the paper can be read more than one way.

use serde::{Deserialize, Serialize};

/// Where the Bernoulli(gamma) mask decision of eq. 4 is drawn: the paper
/// can be read three ways (docs/method.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskMode {
    /// One draw per sample: all 49 squares of a face or none (the default).
    PerSample,
    /// One draw for the whole batch (paper 4.2: 60 % "per training iteration").
    PerBatch,
    /// One draw per landmark and sample (eq. 4's `B(p_k^n, gamma, r)`).
    PerLandmark,
}

/// Which reading of eq. 3's landmark detector D runs (docs/method.md, MFRR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// The default: D reads F_p and *locates* the 49 points. `p_2 =
    /// template + D_0(F_p)` (a head over the whole feature map, starting
    /// from the alignment template), then `p_m = p_(m-1) + D(F_p, p_(m-1))`
    /// refines, each step knowing which landmark it moves (`locator.rs`).
    Locate,
    /// The earlier reading, kept for comparison: a denoising cascade that
    /// starts at p_1, adds a few pixels of jitter and predicts it back
    /// (`landmarks.rs`). Its input already sits within a fraction of a
    /// feature cell of its target, and it was measured not to learn.
    Denoise,
}

/// The units of L_d (eq. 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LdScale {
    /// The literal form: the sum over the k - 1 steps of MSEs in pixels^2.
    /// Grows with the image side and with k (about 431 at the paper's 256 px,
    /// k = 50, sigma_max = 4, most of it the jitter no head can predict).
    PixelSum,
    /// Scale-free, for the `denoise` detector: the mean over the steps of
    /// the MSE divided by `sigma_max^2`. A head that predicts no offset
    /// scores about 1/3 (the mean of `sigma_m^2 / sigma_max^2` over a
    /// linear ramp to 0), at any image size, k or sigma_max. Needs
    /// `sigma_max > 0`.
    Jitter,
    /// Scale-free, for the `locate` detector (the default): squared errors
    /// in units of `loc_unit` (a fixed fraction of the image side), the
    /// locating term (m = 2) plus the mean of the refinement terms (m >= 3),
    /// so L_d neither grows with the image side nor with k, and k does not
    /// dilute the locating term.
    Unit,
}

/// What each refinement step of eq. 3 is trained to reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CascadeTarget {
    /// `sg(p_(m-1))`, the previous point (eq. 3's form, the default); p_k
    /// may drift from p_1 as the steps' errors add up.
    Previous,
    /// `p_1`, the cached landmarks (an anchored cascade: every step
    /// denoises toward the landmarks, so p_k cannot drift away).
    Landmarks,
}

/// Which points place the eq. 4 squares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskAt {
    /// `p_k`, the refined points (the paper; the default).
    Refined,
    /// `p_1`, the cached landmarks.
    Landmarks,
}

/// MFRR: landmark detector (eq. 3), masks (eq. 4), reconstruction (eq. 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfrrConfig {
    /// Ablation switch: false drops L_d and L_r (and L_c, which needs F_mic).
    pub enabled: bool,
    /// Ablation switch: false drops the masks and the reconstruction (L_r,
    /// and L_c, which needs F_mic) but keeps the landmark detector (L_d):
    /// with `mfdc.enabled = false`, the "locating head only" row of the
    /// yardstick.
    pub reconstruct: bool,
    /// Eq. 3's detector: `locate` (the default) or `denoise` (the earlier
    /// reading, for comparison).
    pub detector: Detector,
    /// Iterations k: p_1 plus k - 1 detector outputs p_2..p_k (paper: 50).
    pub k: i64,
    /// The `locate` detector's length unit, image pixels at `image_size`
    /// (8 at 256, i.e. 1/32 of the side): L_d's errors and the heads'
    /// outputs are measured in it.
    pub loc_unit: f64,
    /// Channels of the locating head D_0's 1x1 convolution before it reads
    /// the whole map (`locate`).
    pub loc_channels: i64,
    /// Width of the learned per-landmark embedding the refinement steps
    /// read, so that they know which landmark they move (`locate`).
    pub loc_embed: i64,
    /// Jitter standard deviation of the first refinement step, image pixels
    /// at `image_size` (SPEC: 4 px at 256); decreases linearly to 0 at the
    /// last step. 0 gives the literal reading of eq. 3.
    pub sigma_max: f64,
    /// Hidden width of the refinement head D (both detectors), units.
    pub refiner_hidden: i64,
    /// Side r of each landmark's square mask, image pixels at `image_size`
    /// (paper: 40 at 256).
    pub r: f64,
    /// Probability gamma that the masks are applied (paper: 0.6).
    pub gamma: f64,
    /// Where the gamma decision is drawn: per sample, batch or landmark.
    pub mask_mode: MaskMode,
    /// Units of L_d: scale-free `unit` (`locate`, the default) or `jitter`
    /// (`denoise`), or the literal `pixel_sum`.
    pub ld_scale: LdScale,
    /// What each step after the first targets: `landmarks` (p_1, the
    /// default) or `previous` (sg(p_(m-1)), eq. 3's form). The `locate`
    /// detector's m = 2 term always targets p_1.
    pub cascade_target: CascadeTarget,
    /// Which points place the masks: `refined` (p_k) or `landmarks` (p_1).
    pub mask_at: MaskAt,
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

impl Default for MfrrConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            reconstruct: true,
            detector: Detector::Locate,
            k: 50,
            loc_unit: 8.0,
            loc_channels: 64,
            loc_embed: 16,
            sigma_max: 4.0,
            refiner_hidden: 256,
            r: 40.0,
            gamma: 0.6,
            mask_mode: MaskMode::PerSample,
            ld_scale: LdScale::Unit,
            cascade_target: CascadeTarget::Landmarks,
            mask_at: MaskAt::Refined,
            transformer: TransformerConfig::default(),
        }
    }
}

impl Default for TransformerConfig {
    fn default() -> Self {
        Self { d_model: 512, heads: 8, encoder_layers: 6, decoder_layers: 6, ff_dim: 2048, dropout: 0.1 }
    }
}
