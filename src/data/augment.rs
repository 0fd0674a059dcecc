//! On-device augmentation of NCHW batches (paper Appendix B: random crop with padding and
//! horizontal flips for CIFAR-style training), drawing from libtorch's generator so a run seeded
//! per step (train::run) stays exactly reproducible.

use serde::{Deserialize, Serialize};
#[cfg(feature = "torch")]
use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// `[augment]` of a training config.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Augment {
    /// Zero-pad by this many pixels on each side, then crop back to the original size at a
    /// random offset per image (0: no cropping).
    pub crop_padding: i64,
    /// Flip each image left-right with probability ½.
    pub flip: bool,
}

impl Augment {
    /// Whether the augmentation changes anything.
    pub fn is_identity(&self) -> bool {
        self.crop_padding == 0 && !self.flip
    }

    /// Range checks; errors name the field under `augment.`.
    pub fn validate(&self) -> Result<()> {
        if self.crop_padding < 0 {
            return Err(Error::invalid(
                "augment.crop_padding",
                format!("a padding ≥ 0, got {}", self.crop_padding),
            ));
        }
        Ok(())
    }
}

#[cfg(feature = "torch")]
impl Augment {
    /// Augments a batch `x` of shape (N, C, H, W).
    pub fn apply(&self, x: &Tensor) -> Tensor {
        let mut x = x.shallow_clone();
        if self.crop_padding > 0 {
            x = random_crop(&x, self.crop_padding);
        }
        if self.flip {
            let n = x.size()[0];
            let flip = Tensor::rand([n, 1, 1, 1], (Kind::Float, x.device())).lt(0.5);
            x = x.flip([3]).where_self(&flip, &x);
        }
        x
    }
}

#[cfg(feature = "torch")]
/// Zero-pads by `p` and takes an H × W window at a uniform offset in `[0, 2p]²` per image, by
/// two gathers (rows, then columns).
fn random_crop(x: &Tensor, p: i64) -> Tensor {
    let [n, c, h, w] = x.size()[..] else {
        panic!("random_crop expects NCHW, got {:?}", x.size())
    };
    let padded = x.constant_pad_nd([p, p, p, p]);
    let device = x.device();
    let dy = Tensor::randint(2 * p + 1, [n, 1, 1, 1], (Kind::Int64, device));
    let dx = Tensor::randint(2 * p + 1, [n, 1, 1, 1], (Kind::Int64, device));
    let rows = (Tensor::arange(h, (Kind::Int64, device)).view([1, 1, h, 1]) + dy)
        .expand([n, c, h, w + 2 * p], false);
    let cropped_rows = padded.gather(2, &rows, false);
    let cols = (Tensor::arange(w, (Kind::Int64, device)).view([1, 1, 1, w]) + dx)
        .expand([n, c, h, w], false);
    cropped_rows.gather(3, &cols, false)
}

#[cfg(all(test, feature = "torch"))]
mod tests {
    use super::*;
    use tch::Device;

    fn sample() -> Tensor {
        Tensor::arange(2 * 2 * 5 * 6, (Kind::Float, Device::Cpu)).view([2, 2, 5, 6]) + 1.0
    }

    /// Every cropped image is a window of the zero-padded original at one offset for all
    /// channels; with flips, every image is the original or its mirror.
    #[test]
    fn crops_are_windows_and_flips_are_mirrors() {
        tch::manual_seed(1);
        let x = sample();
        let p = 2;
        for _ in 0..20 {
            let y = Augment {
                crop_padding: p,
                flip: false,
            }
            .apply(&x);
            assert_eq!(y.size(), x.size());
            let padded = x.constant_pad_nd([p, p, p, p]);
            for i in 0..2 {
                let found = (0..=2 * p)
                    .flat_map(|dy| (0..=2 * p).map(move |dx| (dy, dx)))
                    .any(|(dy, dx)| {
                        let window = padded.get(i).narrow(1, dy, 5).narrow(2, dx, 6);
                        window.equal(&y.get(i))
                    });
                assert!(found, "image {i} is not a window of the padded original");
            }
            let f = Augment {
                crop_padding: 0,
                flip: true,
            }
            .apply(&x);
            for i in 0..2 {
                assert!(f.get(i).equal(&x.get(i)) || f.get(i).equal(&x.get(i).flip([2])));
            }
        }
        assert!(Augment::default().is_identity());
        assert!(Augment::default().apply(&x).equal(&x));
    }

    /// Both flip outcomes and several crop offsets occur.
    #[test]
    fn randomness_is_used() {
        tch::manual_seed(2);
        let x = Tensor::rand([64, 1, 8, 8], (Kind::Float, Device::Cpu));
        let f = Augment {
            crop_padding: 0,
            flip: true,
        }
        .apply(&x);
        let flipped = (0..64).filter(|&i| !f.get(i).equal(&x.get(i))).count();
        assert!((16..48).contains(&flipped), "{flipped} of 64 flipped");
        let c = Augment {
            crop_padding: 2,
            flip: false,
        }
        .apply(&x);
        let moved = (0..64).filter(|&i| !c.get(i).equal(&x.get(i))).count();
        assert!(moved > 40, "{moved} of 64 crops moved");
    }
}
