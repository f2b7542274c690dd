//! The op sequence and the data it carries, as pure functions of the scenario's seed.
//!
//! Op `j` is drawn from its own generator seeded with `mix(seed, j)`, so the sequence does not
//! depend on how many threads issue it or in what order they run. Embeddings are drawn the same
//! way from the op (or preloaded episode) number: a cluster centre plus Gaussian noise,
//! L2-normalised.

use crate::rng::SplitMix64;

use super::scenario::{DataSpec, Distribution, OpKind, Scenario};

/// One operation to issue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Op {
    /// Position in the sequence.
    pub index: u64,
    /// What to do.
    pub kind: OpKind,
    /// Space (tenant) it addresses, `0..data.spaces`.
    pub space: u32,
    /// Hits asked for (recall, complete).
    pub k: usize,
    /// For `associate`: two distinct preloaded episodes of `space` by ordinal
    /// (`0..data.preload`; episode `i` is in space `i % data.spaces`); otherwise 0.
    pub pair: (u64, u64),
    /// For `associate`: the link's weight in (0, 1].
    pub weight: f32,
}

/// The op generator and embedding source of one scenario.
#[derive(Debug, Clone)]
pub struct Workload {
    seed: u64,
    /// Cumulative op shares in [`OpKind::ALL`] order.
    cumulative: [f64; 5],
    k: usize,
    data: DataSpec,
    centres: Vec<f32>,
}

/// Stream tags keep the op, query-vector and preload-vector generators apart.
const OPS_STREAM: u64 = 0x6F70_7300;
const QUERY_STREAM: u64 = 0x7175_6572;
const PRELOAD_STREAM: u64 = 0x7072_656C;
const CENTRE_STREAM: u64 = 0x6365_6E74;

fn mix(seed: u64, stream: u64, j: u64) -> SplitMix64 {
    // One SplitMix64 step over (seed, stream, j) spreads neighbouring j across the state space.
    let mut g = SplitMix64::new(seed ^ stream.rotate_left(32) ^ j.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let s = g.next_u64();
    SplitMix64::new(s)
}

/// A standard normal draw (Box–Muller).
fn gaussian(g: &mut SplitMix64) -> f32 {
    let u1 = g.next_open01();
    let u2 = g.next_open01();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else if let Some(first) = v.first_mut() {
        *first = 1.0;
    }
}

impl Workload {
    /// The workload of a validated scenario (allocates `clusters × dimension` floats, bounded by
    /// [`super::scenario::MAX_CENTRE_FLOATS`]).
    pub fn new(s: &Scenario) -> Self {
        let mut cumulative = [0.0; 5];
        let mut acc = 0.0;
        for (i, kind) in OpKind::ALL.iter().enumerate() {
            acc += s.operations.weight(*kind);
            cumulative[i] = acc;
        }
        let d = s.data.dimension;
        let mut centres = vec![0.0f32; s.data.clusters * d];
        for (c, centre) in centres.chunks_exact_mut(d).enumerate() {
            let mut g = mix(s.seed, CENTRE_STREAM, c as u64);
            centre.iter_mut().for_each(|x| *x = gaussian(&mut g));
            normalise(centre);
        }
        Workload {
            seed: s.seed,
            cumulative,
            k: s.operations.k,
            data: s.data.clone(),
            centres,
        }
    }

    /// The data description.
    pub fn data(&self) -> &DataSpec {
        &self.data
    }

    /// Op `j` of the sequence.
    pub fn op(&self, j: u64) -> Op {
        let mut g = mix(self.seed, OPS_STREAM, j);
        let u = g.next_open01() * self.cumulative[4];
        let kind = OpKind::ALL[self.cumulative.iter().position(|&c| u < c).unwrap_or(4)];
        let mut space = g.below(u64::from(self.data.spaces)) as u32;
        let spaces = u64::from(self.data.spaces);
        let (pair, weight) = if kind == OpKind::Associate && self.data.preload >= 2 {
            // Two distinct preloaded episodes of one space (episode i is in space i % spaces).
            let a = g.below(self.data.preload);
            let home = a % spaces;
            let in_space = (self.data.preload - 1 - home) / spaces + 1;
            let b = if in_space >= 2 {
                let at = a / spaces;
                home + ((at + 1 + g.below(in_space - 1)) % in_space) * spaces
            } else {
                a
            };
            space = home as u32;
            ((a, b), (1.0 - g.next_open01()) as f32)
        } else {
            ((0, 0), 0.0)
        };
        Op {
            index: j,
            kind,
            space,
            k: self.k,
            pair,
            weight,
        }
    }

    /// The embedding op `j` carries (the stored vector of an observe, the cue of a read).
    pub fn op_embedding(&self, j: u64, out: &mut Vec<f32>) {
        self.embedding(QUERY_STREAM, j, out);
    }

    /// The embedding of preloaded episode `i`.
    pub fn preload_embedding(&self, i: u64, out: &mut Vec<f32>) {
        self.embedding(PRELOAD_STREAM, i, out);
    }

    /// The space preloaded episode `i` belongs to.
    pub fn preload_space(&self, i: u64) -> u32 {
        (i % u64::from(self.data.spaces)) as u32
    }

    fn embedding(&self, stream: u64, j: u64, out: &mut Vec<f32>) {
        let d = self.data.dimension;
        out.clear();
        out.resize(d, 0.0);
        let mut g = mix(self.seed, stream, j);
        let clusters = self.data.clusters as u64;
        let cluster = match self.data.distribution {
            Distribution::Uniform => None,
            Distribution::Clustered => Some(g.below(clusters)),
            Distribution::HotSpot => {
                let hot = (clusters / 100).max(1);
                Some(if g.next_open01() < 0.9 {
                    g.below(hot)
                } else {
                    g.below(clusters)
                })
            }
        };
        match cluster {
            None => out.iter_mut().for_each(|x| *x = gaussian(&mut g)),
            Some(c) => {
                let c = c as usize;
                let centre = &self.centres[c * d..(c + 1) * d];
                let noise = 0.6 / (d as f32).sqrt();
                for (x, m) in out.iter_mut().zip(centre) {
                    *x = m + gaussian(&mut g) * noise;
                }
            }
        }
        normalise(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadtest::scenario::parse;

    fn scenario(seed: u64) -> Scenario {
        parse(
            &format!(
                "name = \"t\"\nseed = {seed}\nduration = 1\n[arrival]\nkind = \"constant\"\nrate = 10\n\
                 [operations]\nobserve = 1\nrecall = 1\nrecall_spread = 1\ncomplete = 1\nassociate = 1\n\
                 [data]\npreload = 100\ndimension = 16\nclusters = 4\nspaces = 3\n"
            ),
            "t.toml",
        )
        .unwrap()
    }

    #[test]
    fn sequence_is_a_pure_function_of_the_seed() {
        let a = Workload::new(&scenario(7));
        let b = Workload::new(&scenario(7));
        let c = Workload::new(&scenario(8));
        let seq = |w: &Workload| (0..1000).map(|j| w.op(j)).collect::<Vec<_>>();
        assert_eq!(seq(&a), seq(&b));
        assert_ne!(seq(&a), seq(&c));
        // Order of evaluation does not matter.
        assert_eq!(a.op(500), b.op(500));
        let (mut va, mut vb) = (Vec::new(), Vec::new());
        a.op_embedding(3, &mut va);
        b.op_embedding(3, &mut vb);
        assert_eq!(va, vb);
        assert_eq!(va.len(), 16);
        let norm: f32 = va.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }

    #[test]
    fn mix_follows_the_weights() {
        let w = Workload::new(&scenario(1));
        let mut counts = [0u32; 5];
        for j in 0..50_000 {
            let op = w.op(j);
            counts[op.kind.index()] += 1;
            assert!(op.space < 3);
            if op.kind == OpKind::Associate {
                assert_ne!(op.pair.0, op.pair.1);
                assert_eq!(op.pair.0 % 3, op.pair.1 % 3);
                assert_eq!(u64::from(op.space), op.pair.0 % 3);
                assert!(op.pair.0 < 100 && op.pair.1 < 100);
                assert!(op.weight > 0.0 && op.weight <= 1.0);
            }
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }
}
