//! The unconstrained-ish vector the optimiser moves in (theta), for any
//! compiled law, and its map to the law's parameters.
//!
//! - Positive parameters are fitted as logs, the others as themselves;
//!   bounds become a box on theta.
//! - A linear parameter c (the law is affine in it) is fitted as the size
//!   of its term at a reference point in the middle of the data,
//!   c * |phi(ref)| with phi = d prediction / d c (or the log of it), not as
//!   c. Raw amplitudes move by orders of magnitude whenever an exponent
//!   changes; the term's size at the data barely does, so this removes most
//!   of the correlation between amplitude and exponent that makes the
//!   objective's valleys narrow. It is what the hand-written LoopLM
//!   transform does for A, B and C, derived here for any law: phi and its
//!   derivatives are nodes of the compiled graph.
//!
//! Fixed parameters are left out of theta.

use super::dag::{Graph, NodeId};
use super::diff;
use super::params::{ParamRule, Transform};
use super::CompiledLaw;

/// Box for log-transformed coordinates: keeps exp() finite.
const LOG_BOUNDS: (f64, f64) = (-690.0, 690.0);

/// A linear parameter measured at the reference point.
#[derive(Debug, Clone)]
struct Referenced {
    param: usize,
    /// d prediction / d param, and its derivatives by every parameter.
    phi: NodeId,
    dphi: Vec<NodeId>,
}

/// Map between theta and a law's parameters.
#[derive(Debug, Clone)]
pub struct LawSpace {
    pub rules: Vec<ParamRule>,
    /// Free parameters, in theta order.
    free: Vec<usize>,
    /// Linear free parameters measured at the reference point.
    referenced: Vec<Referenced>,
    /// Graph with phi and its derivatives.
    graph: Graph,
    reference: Vec<f64>,
}

impl LawSpace {
    /// The space of `law` under `rules`, with linear parameters measured at
    /// `reference` (one value per variable).
    ///
    /// A linear parameter whose term oscillates (a sine or cosine of the
    /// other parameters) keeps its own units: its size at one point passes
    /// through 0 as they move, which would make the measure singular.
    pub fn new(law: &CompiledLaw, rules: Vec<ParamRule>, reference: Vec<f64>) -> LawSpace {
        let free: Vec<usize> = (0..rules.len())
            .filter(|&p| rules[p].fixed.is_none())
            .collect();
        let mut graph = law.graph.clone();
        let np = rules.len();
        let mut referenced = Vec::new();
        for &p in &free {
            let r = &rules[p];
            // A bounded linear parameter keeps its own units: its bounds
            // would otherwise move with the other parameters.
            let bounded = r.upper.is_finite()
                || (r.lower.is_finite() && !(r.transform == Transform::Log && r.lower == 0.0));
            if r.linear && !bounded && !oscillates(&law.graph, law.grad[p]) {
                let phi = law.grad[p];
                let dphi = diff::gradient(&mut graph, phi, np);
                referenced.push(Referenced {
                    param: p,
                    phi,
                    dphi,
                });
            }
        }
        LawSpace {
            rules,
            free,
            referenced,
            graph,
            reference,
        }
    }

    /// The same parameters in their own units, for a Newton-type polish
    /// near an optimum: a positive parameter is bounded below by 0 instead
    /// of fitted as a log. In logs, a parameter whose optimum is 0 (an
    /// offset the data do not need) runs off towards ln 0 with a curvature
    /// that vanishes as fast as its gradient, so it never settles; here it
    /// stops on its bound.
    pub fn raw(&self, law: &CompiledLaw) -> LawSpace {
        let rules = self
            .rules
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if r.transform == Transform::Log {
                    r.transform = Transform::Identity;
                    r.lower = r.lower.max(0.0);
                }
                r
            })
            .collect();
        LawSpace::new(law, rules, self.reference.clone())
    }

    /// This space with parameter `i` fixed at `value` (a profile).
    pub fn with_fixed(&self, law: &CompiledLaw, i: usize, value: f64) -> LawSpace {
        let mut rules = self.rules.clone();
        rules[i].fixed = Some(value);
        LawSpace::new(law, rules, self.reference.clone())
    }

    pub fn dim(&self) -> usize {
        self.free.len()
    }

    pub fn n_params(&self) -> usize {
        self.rules.len()
    }

    /// Indices of the free parameters, in theta order.
    pub fn free(&self) -> &[usize] {
        &self.free
    }

    /// Bounds of every theta coordinate.
    pub fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
        self.free
            .iter()
            .map(|&p| {
                let r = &self.rules[p];
                if self.referenced.iter().any(|x| x.param == p) {
                    return match r.transform {
                        Transform::Log => LOG_BOUNDS,
                        Transform::Identity => (f64::NEG_INFINITY, f64::INFINITY),
                    };
                }
                match r.transform {
                    Transform::Log => (
                        if r.lower > 0.0 {
                            r.lower.ln()
                        } else {
                            LOG_BOUNDS.0
                        },
                        if r.upper.is_finite() {
                            r.upper.ln()
                        } else {
                            LOG_BOUNDS.1
                        },
                    ),
                    Transform::Identity => (r.lower, r.upper),
                }
            })
            .unzip()
    }

    /// |phi| and d ln|phi| / d p of every referenced parameter at `p`
    /// (only the non-linear parameters of `p` matter).
    fn at_reference(&self, p: &[f64], buf: &mut Vec<f64>) -> Vec<(f64, Vec<f64>)> {
        if self.referenced.is_empty() {
            return Vec::new();
        }
        let last = self
            .referenced
            .iter()
            .flat_map(|r| r.dphi.iter().copied().chain([r.phi]))
            .max()
            .unwrap_or(0);
        self.graph.eval_all(last, &self.reference, p, buf);
        self.referenced
            .iter()
            .map(|r| {
                let phi = buf[r.phi as usize];
                // A term that vanishes at the reference cannot be measured
                // there: its parameter is then taken as it is.
                if !(phi.is_finite() && phi != 0.0) {
                    return (1.0, vec![0.0; p.len()]);
                }
                let dl = r.dphi.iter().map(|&d| buf[d as usize] / phi).collect();
                (phi.abs(), dl)
            })
            .collect()
    }

    /// theta -> parameters (fixed ones at their values).
    pub fn to_params(&self, theta: &[f64]) -> Vec<f64> {
        let mut p: Vec<f64> = self.rules.iter().map(|r| r.fixed.unwrap_or(0.0)).collect();
        for (k, &i) in self.free.iter().enumerate() {
            p[i] = match self.rules[i].transform {
                Transform::Identity => theta[k],
                Transform::Log => theta[k].exp(),
            };
        }
        let mut buf = Vec::new();
        for (r, (phi, _)) in self.referenced.iter().zip(self.at_reference(&p, &mut buf)) {
            p[r.param] /= phi;
        }
        p
    }

    /// Parameters -> theta, clamped into the bounds.
    pub fn to_theta(&self, p: &[f64]) -> Vec<f64> {
        let mut buf = Vec::new();
        let refs = self.at_reference(p, &mut buf);
        let (lo, hi) = self.bounds();
        self.free
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let mut v = p[i];
                if let Some(j) = self.referenced.iter().position(|r| r.param == i) {
                    v *= refs[j].0;
                }
                let t = match self.rules[i].transform {
                    Transform::Identity => v,
                    Transform::Log => v.max(1e-300).ln(),
                };
                t.clamp(lo[k], hi[k])
            })
            .collect()
    }

    /// d parameters / d theta at `p`: row-major, one row per parameter
    /// (zero for fixed ones), one column per theta coordinate. The matrix
    /// whose transpose [`LawSpace::grad_to_theta`] applies; least-squares
    /// optimisers need it whole, to carry J^T J into theta.
    pub fn jacobian(&self, p: &[f64]) -> Vec<f64> {
        let (np, m) = (self.n_params(), self.dim());
        let mut buf = Vec::new();
        let refs = self.at_reference(p, &mut buf);
        // d p_i / d theta_k through p_i's own coordinate alone.
        let direct: Vec<f64> = self
            .free
            .iter()
            .map(|&i| match self.rules[i].transform {
                Transform::Log => p[i],
                Transform::Identity => match self.referenced.iter().position(|r| r.param == i) {
                    Some(j) => 1.0 / refs[j].0,
                    None => 1.0,
                },
            })
            .collect();
        let mut jac = vec![0.0; np * m];
        for (k, &i) in self.free.iter().enumerate() {
            jac[i * m + k] = direct[k];
        }
        // A referenced c = u / |phi(q)| also moves with every q.
        for (r, (_, dl)) in self.referenced.iter().zip(&refs) {
            let c = p[r.param];
            for (k, &i) in self.free.iter().enumerate() {
                if dl[i] != 0.0 {
                    jac[r.param * m + k] -= c * dl[i] * direct[k];
                }
            }
        }
        jac
    }

    /// Chain rule: the gradient with respect to the parameters `gp` at `p`
    /// -> the gradient with respect to theta.
    pub fn grad_to_theta(&self, p: &[f64], gp: &[f64], out: &mut [f64]) {
        let mut g = gp.to_vec();
        let mut buf = Vec::new();
        let refs = self.at_reference(p, &mut buf);
        // c = u / |phi(q)| for a referenced c: dc/dq_k = -c d ln|phi| / dq_k,
        // and dc/du = c/u (= c for a log coordinate).
        for (r, (_, dl)) in self.referenced.iter().zip(&refs) {
            let c = p[r.param];
            for (k, d) in dl.iter().enumerate() {
                if *d != 0.0 {
                    g[k] -= gp[r.param] * c * d;
                }
            }
        }
        for (k, &i) in self.free.iter().enumerate() {
            out[k] = match self.rules[i].transform {
                Transform::Log => g[i] * p[i],
                Transform::Identity => match self.referenced.iter().position(|r| r.param == i) {
                    Some(j) => g[i] / refs[j].0,
                    None => g[i],
                },
            };
        }
    }
}

/// Whether node `id` reads a function that is not monotone (sin, cos):
/// its value can pass through 0 wherever the parameters put it.
fn oscillates(g: &super::dag::Graph, id: super::dag::NodeId) -> bool {
    use super::dag::Node;
    let mut seen = vec![false; id as usize + 1];
    let mut stack = vec![id];
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n as usize], true) {
            continue;
        }
        let node = g.node(n);
        if let Node::Fn1(f, _) = node {
            if !f.spec().increasing {
                return true;
            }
        }
        stack.extend(node.operands());
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::law::params::rules;
    use crate::law::LawFile;

    /// The chain rule against finite differences of a linear functional
    /// of the parameters, with referenced linear parameters (positive and
    /// free), logs, identities and a fixed parameter.
    #[test]
    fn chain_rule_matches_finite_differences() {
        let cases = [
            (
                "name = \"t\"\nformula = \"E + A/(N + t1)^alpha + B/D^beta\"\n\
                 [variables]\nN = \"N\"\nD = \"D\"\n[params.E]\npositive = true\n\
                 [params.A]\npositive = true\n",
                vec![],
            ),
            (
                "name = \"t\"\nformula = \"-E + A*exp(-k*N) + B*log(D)*N^c\"\n\
                 [variables]\nN = \"N\"\nD = \"D\"\n",
                vec![("c", 0.7)],
            ),
        ];
        for (text, fixed) in cases {
            let file = LawFile::parse(text, "test").unwrap();
            let law = file.compile("test").unwrap();
            let cols = vec![vec![1.0, 2.0, 3.0], vec![10.0, 20.0, 40.0]];
            let mut rs = rules(&file, &law, &cols);
            for (name, v) in &fixed {
                rs.iter_mut().find(|r| r.name == *name).unwrap().fixed = Some(*v);
            }
            let space = LawSpace::new(&law, rs, vec![1.7, 18.0]);
            let weights: Vec<f64> = (0..law.params.len())
                .map(|i| 0.3 + 0.45 * i as f64 - 0.1 * (i * i) as f64)
                .collect();
            let phi = |p: &[f64]| p.iter().zip(&weights).map(|(a, b)| a * b).sum::<f64>();
            let theta: Vec<f64> = (0..space.dim()).map(|k| 0.2 + 0.11 * k as f64).collect();
            let p = space.to_params(&theta);
            let back = space.to_theta(&p);
            for k in 0..space.dim() {
                assert!((back[k] - theta[k]).abs() < 1e-12, "{text}: round trip {k}");
            }
            let mut g = vec![0.0; space.dim()];
            space.grad_to_theta(&p, &weights, &mut g);
            // The whole Jacobian's transpose applies the same chain rule.
            let (np, m) = (space.n_params(), space.dim());
            let jac = space.jacobian(&p);
            for k in 0..m {
                let jt: f64 = (0..np).map(|i| jac[i * m + k] * weights[i]).sum();
                assert!(
                    (jt - g[k]).abs() <= 1e-12 * (1.0 + g[k].abs()),
                    "{text}: jacobian column {k}: {jt} vs {}",
                    g[k]
                );
            }
            for k in 0..space.dim() {
                let h = 1e-6;
                let (mut up, mut dn) = (theta.clone(), theta.clone());
                up[k] += h;
                dn[k] -= h;
                let fd = (phi(&space.to_params(&up)) - phi(&space.to_params(&dn))) / (2.0 * h);
                assert!(
                    (fd - g[k]).abs() <= 1e-6 * (1.0 + fd.abs()),
                    "{text}: coordinate {k}: {fd} vs {}",
                    g[k]
                );
            }
        }
    }
}
