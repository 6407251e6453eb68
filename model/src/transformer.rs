//! The classical encoder-decoder Transformer T of MFRR (paper section 3.2,
//! "经典 Transformer [33]", Vaswani et al. 2017), written out because tch
//! has no `nn.Transformer`.
//!
//! It computes what `torch.nn.Transformer(d_model, nhead, num_encoder_layers,
//! num_decoder_layers, dim_feedforward, dropout, batch_first=True)` computes
//! with its defaults (post-norm, ReLU, LayerNorm eps 1e-5, a final LayerNorm
//! after the encoder and after the decoder, no masks), and its variables have
//! that module's names (`encoder.layers.0.self_attn.in_proj_weight`,
//! `decoder.layers.0.multihead_attn.out_proj.bias`, `decoder.norm.weight`,
//! ...), so a PyTorch state dict loads unchanged.

use tch::nn;
use tch::Tensor;

use crate::config::TransformerConfig;

/// Xavier-uniform init, as `nn.Transformer._reset_parameters` does.
fn xavier(fan_in: i64, fan_out: i64) -> nn::Init {
    let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
    nn::Init::Uniform { lo: -a, up: a }
}

fn linear(p: nn::Path, c_in: i64, c_out: i64) -> nn::Linear {
    nn::linear(p, c_in, c_out, nn::LinearConfig { ws_init: xavier(c_in, c_out), ..Default::default() })
}

/// `nn.MultiheadAttention` (packed `in_proj_weight`, `out_proj`).
#[derive(Debug)]
struct Attention {
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    out_proj: nn::Linear,
    heads: i64,
}

impl Attention {
    fn new(p: nn::Path, d: i64, heads: i64) -> Self {
        Self {
            in_proj_weight: p.var("in_proj_weight", &[3 * d, d], xavier(d, 3 * d)),
            in_proj_bias: p.zeros("in_proj_bias", &[3 * d]),
            out_proj: nn::linear(
                &p / "out_proj",
                d,
                d,
                nn::LinearConfig { bs_init: Some(nn::Init::Const(0.0)), ..Default::default() },
            ),
            heads,
        }
    }

    /// Scaled dot-product attention of `q` over `kv`, no mask.
    ///
    /// # Shapes
    /// `q`: `[B, Lq, d]`, `kv`: `[B, Lk, d]` -> `[B, Lq, d]`.
    fn forward(&self, q: &Tensor, kv: &Tensor, dropout: f64) -> Tensor {
        let (b, lq, d) = q.size3().expect("attention query is [B, L, d]");
        let lk = kv.size()[1];
        let w = self.in_proj_weight.chunk(3, 0);
        let bias = self.in_proj_bias.chunk(3, 0);
        let dh = d / self.heads;
        let split = |x: &Tensor, i: usize, l: i64| {
            x.linear(&w[i], Some(&bias[i])).view([b, l, self.heads, dh]).transpose(1, 2)
            // [B, h, L, dh]
        };
        let (qh, kh, vh) = (split(q, 0, lq), split(kv, 1, lk), split(kv, 2, lk));
        let out = Tensor::scaled_dot_product_attention(&qh, &kh, &vh, None::<Tensor>, dropout, false, None, false);
        out.transpose(1, 2).contiguous().view([b, lq, d]).apply(&self.out_proj) // [B, Lq, d]
    }
}

/// `linear2(dropout(relu(linear1(x))))`.
#[derive(Debug)]
struct FeedForward {
    linear1: nn::Linear,
    linear2: nn::Linear,
}

impl FeedForward {
    fn new(p: &nn::Path, d: i64, ff: i64) -> Self {
        Self { linear1: linear(p / "linear1", d, ff), linear2: linear(p / "linear2", ff, d) }
    }

    fn forward(&self, x: &Tensor, dropout: f64, train: bool) -> Tensor {
        x.apply(&self.linear1).relu().dropout(dropout, train).apply(&self.linear2)
    }
}

fn layer_norm(p: nn::Path, d: i64) -> nn::LayerNorm {
    nn::layer_norm(p, vec![d], Default::default())
}

/// `nn.TransformerEncoderLayer`, post-norm.
#[derive(Debug)]
struct EncoderLayer {
    self_attn: Attention,
    ff: FeedForward,
    norm1: nn::LayerNorm,
    norm2: nn::LayerNorm,
}

/// `nn.TransformerDecoderLayer`, post-norm.
#[derive(Debug)]
struct DecoderLayer {
    self_attn: Attention,
    multihead_attn: Attention,
    ff: FeedForward,
    norm1: nn::LayerNorm,
    norm2: nn::LayerNorm,
    norm3: nn::LayerNorm,
}

/// The encoder-decoder stack.
#[derive(Debug)]
pub struct Transformer {
    encoder: Vec<EncoderLayer>,
    encoder_norm: nn::LayerNorm,
    decoder: Vec<DecoderLayer>,
    decoder_norm: nn::LayerNorm,
    dropout: f64,
}

impl Transformer {
    /// Builds the stack under `p` (pass `... / "transformer"`).
    pub fn new(p: nn::Path, cfg: &TransformerConfig) -> Self {
        let (d, h, ff) = (cfg.d_model, cfg.heads, cfg.ff_dim);
        let enc = &p / "encoder";
        let dec = &p / "decoder";
        let encoder = (0..cfg.encoder_layers)
            .map(|i| {
                let l = &enc / "layers" / i;
                EncoderLayer {
                    self_attn: Attention::new(&l / "self_attn", d, h),
                    ff: FeedForward::new(&l, d, ff),
                    norm1: layer_norm(&l / "norm1", d),
                    norm2: layer_norm(&l / "norm2", d),
                }
            })
            .collect();
        let decoder = (0..cfg.decoder_layers)
            .map(|i| {
                let l = &dec / "layers" / i;
                DecoderLayer {
                    self_attn: Attention::new(&l / "self_attn", d, h),
                    multihead_attn: Attention::new(&l / "multihead_attn", d, h),
                    ff: FeedForward::new(&l, d, ff),
                    norm1: layer_norm(&l / "norm1", d),
                    norm2: layer_norm(&l / "norm2", d),
                    norm3: layer_norm(&l / "norm3", d),
                }
            })
            .collect();
        Self {
            encoder,
            encoder_norm: layer_norm(&enc / "norm", d),
            decoder,
            decoder_norm: layer_norm(&dec / "norm", d),
            dropout: cfg.dropout,
        }
    }

    /// `nn.Transformer.forward(src, tgt)` without masks; dropout only when
    /// `train`.
    ///
    /// # Shapes
    /// `src`: `[B, Ls, d]`, `tgt`: `[B, Lt, d]` -> `[B, Lt, d]`.
    pub fn forward_t(&self, src: &Tensor, tgt: &Tensor, train: bool) -> Tensor {
        let p = if train { self.dropout } else { 0.0 };
        let drop = |x: Tensor| x.dropout(p, train);
        let mut x = src.shallow_clone();
        for l in &self.encoder {
            x = (&x + drop(l.self_attn.forward(&x, &x, p))).apply(&l.norm1);
            x = (&x + drop(l.ff.forward(&x, p, train))).apply(&l.norm2);
        }
        let memory = x.apply(&self.encoder_norm); // [B, Ls, d]
        let mut y = tgt.shallow_clone();
        for l in &self.decoder {
            y = (&y + drop(l.self_attn.forward(&y, &y, p))).apply(&l.norm1);
            y = (&y + drop(l.multihead_attn.forward(&y, &memory, p))).apply(&l.norm2);
            y = (&y + drop(l.ff.forward(&y, p, train))).apply(&l.norm3);
        }
        y.apply(&self.decoder_norm) // [B, Lt, d]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn variables_have_torch_nn_transformer_names_and_count() {
        let vs = nn::VarStore::new(Device::Cpu);
        let t = Transformer::new(vs.root(), &TransformerConfig::default());
        let v = vs.variables();
        for name in [
            "encoder.layers.0.self_attn.in_proj_weight",
            "encoder.layers.5.linear2.bias",
            "encoder.norm.weight",
            "decoder.layers.5.multihead_attn.out_proj.weight",
            "decoder.layers.0.norm3.bias",
            "decoder.norm.bias",
        ] {
            assert!(v.contains_key(name), "{name}");
        }
        // torch.nn.Transformer() has 44,140,544 parameters.
        assert_eq!(v.values().map(|t| t.numel() as i64).sum::<i64>(), 44_140_544);
        let x = Tensor::randn([2, 5, 512], (Kind::Float, Device::Cpu));
        assert_eq!(t.forward_t(&x, &x, false).size(), [2, 5, 512]);
    }
}
