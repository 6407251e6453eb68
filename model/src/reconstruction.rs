//! MFRR region reconstruction, paper section 3.2, eq. 5:
//! `F_mic = T(F_mask)`, `L_r = MSE(F_mic, sg(F_p))` over all cells.
//!
//! The H*W cells of `F_mask` are tokens: `Linear(C -> d_model)`
//! (`input_proj`), plus a learned 2D position embedding `row_embed[i] +
//! col_embed[j]`, through the encoder-decoder [`Transformer`] with the same
//! token sequence as source and target (`T(x, x)`: the decoder's queries
//! are the masked tokens themselves, which know where they sit), then
//! `Linear(d_model -> C)` (`output_proj`) back to the feature map's shape.

use tch::nn;
use tch::{Reduction, Tensor};

use crate::precision::at_least_f32;

use crate::config::ModelConfig;
use crate::transformer::Transformer;

/// The reconstruction network T with its token projections.
#[derive(Debug)]
pub struct Reconstructor {
    input_proj: nn::Linear,
    row_embed: Tensor,
    col_embed: Tensor,
    transformer: Transformer,
    output_proj: nn::Linear,
}

impl Reconstructor {
    /// Builds T under `p` (pass `root / "reconstructor"`).
    pub fn new(p: nn::Path, cfg: &ModelConfig) -> Self {
        let (c, s, t) = (cfg.feature_channels(), cfg.feature_side(), &cfg.mfrr.transformer);
        let pos = nn::Init::Randn { mean: 0.0, stdev: 0.02 };
        Self {
            input_proj: nn::linear(&p / "input_proj", c, t.d_model, Default::default()),
            row_embed: p.var("row_embed", &[s, t.d_model], pos),
            col_embed: p.var("col_embed", &[s, t.d_model], pos),
            transformer: Transformer::new(&p / "transformer", t),
            output_proj: nn::linear(&p / "output_proj", t.d_model, c, Default::default()),
        }
    }

    /// `F_mic = T(F_mask)`; dropout only when `train`.
    ///
    /// # Shapes
    /// `f_mask`: `[B, C, H, W]` -> `[B, C, H, W]`.
    pub fn forward_t(&self, f_mask: &Tensor, train: bool) -> Tensor {
        let (b, c, h, w) = f_mask.size4().expect("F_mask is [B, C, H, W]");
        let d = self.row_embed.size()[1];
        let pos = (self.row_embed.unsqueeze(1) + self.col_embed.unsqueeze(0)).view([h * w, d]); // [HW, d]
        let tokens = f_mask.flatten(2, 3).transpose(1, 2).apply(&self.input_proj) + pos; // [B, HW, d]
        let out = self.transformer.forward_t(&tokens, &tokens, train); // [B, HW, d]
        out.apply(&self.output_proj).transpose(1, 2).reshape([b, c, h, w]) // [B, C, H, W]
    }
}

/// Eq. 5: mean squared error over all cells and channels, to the
/// stop-gradient `F_p`.
///
/// # Shapes
/// `f_mic`, `f_p`: `[B, C, H, W]` -> scalar.
pub fn reconstruction_loss(f_mic: &Tensor, f_p: &Tensor) -> Tensor {
    at_least_f32(f_mic).mse_loss(&at_least_f32(&f_p.detach()), Reduction::Mean)
}
