//! SGD with momentum and weight decay, `torch.optim.SGD` semantics
//! (dampening 0, no Nesterov), over named variables so its state (one
//! momentum buffer per trainable variable) can be checkpointed; tch's own
//! optimizer does not expose its buffers.
//!
//! Per trainable variable `p` with gradient `g`, at each step:
//! `d = g + wd * p`; `buf = d` on the first step, else `buf = mu * buf + d`;
//! `p -= lr * buf`.

use std::collections::BTreeMap;

use tch::{nn::VarStore, Tensor};

use super::error::{Result, TrainError};

/// The optimizer and its momentum buffers, keyed by variable name.
#[derive(Debug)]
pub struct Sgd {
    /// Momentum mu.
    pub momentum: f64,
    /// Weight decay wd.
    pub weight_decay: f64,
    /// `(name, variable)` of every trainable variable, sorted by name.
    params: Vec<(String, Tensor)>,
    /// One buffer per variable once it has had a gradient.
    buffers: BTreeMap<String, Tensor>,
}

impl Sgd {
    /// An optimizer over the trainable (gradient-requiring) variables of `vs`.
    pub fn new(vs: &VarStore, momentum: f64, weight_decay: f64) -> Self {
        let mut params: Vec<_> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        Self { momentum, weight_decay, params, buffers: BTreeMap::new() }
    }

    /// Clears every gradient (before a backward pass).
    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// One update with learning rate `lr`; variables without a gradient
    /// are left alone (as `torch.optim.SGD` does).
    pub fn step(&mut self, lr: f64) {
        tch::no_grad(|| {
            for (name, p) in &mut self.params {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let d = if self.weight_decay != 0.0 { &g + &*p * self.weight_decay } else { g };
                let buf = match self.buffers.get_mut(name) {
                    Some(buf) => {
                        let _ = buf.g_mul_scalar_(self.momentum).g_add_(&d);
                        buf.shallow_clone()
                    }
                    None => {
                        let buf = d.detach().copy();
                        self.buffers.insert(name.clone(), buf.shallow_clone());
                        buf
                    }
                };
                let _ = p.g_sub_(&(buf * lr));
            }
        });
    }

    /// The trainable variables with their names, in name order.
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        self.params.iter().map(|(n, p)| (n.clone(), p.shallow_clone())).collect()
    }

    /// The defined gradients, in variable-name order (the order every rank
    /// of a data-parallel run sees them in).
    pub fn gradients(&self) -> Vec<Tensor> {
        self.params.iter().map(|(_, p)| p.grad()).filter(Tensor::defined).collect()
    }

    /// The momentum buffers by variable name (for checkpoints).
    pub fn buffers(&self) -> &BTreeMap<String, Tensor> {
        &self.buffers
    }

    /// Restores buffers saved by [`Sgd::buffers`]; every name must be a
    /// trainable variable of the same shape.
    pub fn load_buffers(&mut self, saved: BTreeMap<String, Tensor>) -> Result<()> {
        let mut buffers = BTreeMap::new();
        for (name, t) in saved {
            let Some((_, p)) = self.params.iter().find(|(n, _)| *n == name) else {
                return Err(TrainError::Config(format!("momentum buffer {name} has no trainable variable")));
            };
            if t.size() != p.size() {
                return Err(TrainError::Config(format!(
                    "momentum buffer {name}: shape {:?}, variable has {:?}",
                    t.size(),
                    p.size()
                )));
            }
            buffers.insert(name, t.to_device(p.device()).to_kind(p.kind()));
        }
        self.buffers = buffers;
        Ok(())
    }
}

/// The learning rate at `step` (0-based, before the update) of `total`
/// steps: cosine from `lr` to `min_lr`, or constant.
pub fn learning_rate(lr: f64, min_lr: f64, cosine: bool, step: u64, total: u64) -> f64 {
    if !cosine || total == 0 {
        return lr;
    }
    let t = (step.min(total) as f64) / total as f64;
    min_lr + 0.5 * (lr - min_lr) * (1.0 + (std::f64::consts::PI * t).cos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// Two steps on `L = sum(w * x)` with fixed `x`, against values worked
    /// out by hand from the `torch.optim.SGD` update rule.
    #[test]
    fn two_steps_match_hand_computed_torch_sgd() {
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().var_copy("w", &Tensor::from_slice(&[1.0f32, -2.0]));
        let _frozen = vs.root().zeros_no_train("running", &[2]);
        let x = Tensor::from_slice(&[0.5f32, 3.0]);
        let mut opt = Sgd::new(&vs, 0.9, 0.1);
        assert_eq!(opt.params.len(), 1, "buffers are not trained");
        for _ in 0..2 {
            opt.zero_grad();
            (&w * &x).sum(Kind::Float).backward();
            opt.step(0.5);
        }
        // Step 1: d = x + 0.1 w = [0.6, 2.8]; buf = d; w = [1 - 0.3, -2 - 1.4] = [0.7, -3.4].
        // Step 2: d = [0.5 + 0.07, 3 - 0.34] = [0.57, 2.66];
        //   buf = 0.9 [0.6, 2.8] + d = [1.11, 5.18]; w = [0.7 - 0.555, -3.4 - 2.59] = [0.145, -5.99].
        let got: Vec<f32> = Vec::try_from(&w).unwrap();
        let want = [0.145f32, -5.99];
        assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-5), "{got:?}");
        let buf: Vec<f32> = Vec::try_from(&opt.buffers()["w"]).unwrap();
        assert!(buf.iter().zip([1.11f32, 5.18]).all(|(g, w)| (g - w).abs() < 1e-5), "{buf:?}");
    }

    #[test]
    fn restored_buffers_continue_like_the_original() {
        let make = || {
            let vs = VarStore::new(Device::Cpu);
            let w = vs.root().var_copy("w", &Tensor::from_slice(&[1.0f32, -2.0]));
            (vs, w)
        };
        let run = |opt: &mut Sgd, w: &Tensor| {
            opt.zero_grad();
            (w * w).sum(Kind::Float).backward();
            opt.step(0.1);
        };
        let (vs, w) = make();
        let mut a = Sgd::new(&vs, 0.9, 5e-4);
        run(&mut a, &w);
        let (vs2, mut w2) = make();
        tch::no_grad(|| w2.copy_(&w));
        let mut b = Sgd::new(&vs2, 0.9, 5e-4);
        b.load_buffers(a.buffers().iter().map(|(k, v)| (k.clone(), v.copy())).collect()).unwrap();
        run(&mut a, &w);
        run(&mut b, &w2);
        assert!(w.equal(&w2));
        let bad = [("w".to_string(), Tensor::zeros([3], (Kind::Float, Device::Cpu)))].into_iter().collect();
        assert!(b.load_buffers(bad).unwrap_err().to_string().contains("shape [3]"));
    }

    #[test]
    fn cosine_decays_from_lr_to_min_lr() {
        assert_eq!(learning_rate(1e-3, 0.0, true, 0, 100), 1e-3);
        assert!((learning_rate(1e-3, 0.0, true, 50, 100) - 5e-4).abs() < 1e-12);
        assert!(learning_rate(1e-3, 0.0, true, 100, 100).abs() < 1e-12);
        assert_eq!(learning_rate(1e-3, 0.0, false, 70, 100), 1e-3);
    }
}
