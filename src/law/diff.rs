//! Symbolic reverse-mode differentiation over the DAG.
//!
//! One backward sweep from an output node accumulates, for every node on a
//! path to a parameter, its adjoint as a new expression in the same graph;
//! the adjoints of the parameter leaves are the gradient. Because the
//! derivatives are nodes of the same arena, they share the forward pass's
//! sub-expressions (the derivative of x^a reuses x^a), and the CPU
//! interpreter and the GPU code generator run one plan for value and
//! gradient. Differentiating a gradient entry again the same way gives a
//! Hessian row.

use super::dag::{Graph, Node, NodeId};
use super::steps;

/// Which nodes depend on any parameter (only those carry adjoints).
pub fn param_dependent(g: &Graph) -> Vec<bool> {
    let mut dep = vec![false; g.len()];
    for (i, n) in g.nodes().iter().enumerate() {
        dep[i] = match n {
            Node::Param(_) => true,
            _ => n.operands().any(|o| dep[o as usize]),
        };
    }
    dep
}

/// Gradient of `output` with respect to parameters `0..n_params`: one node
/// per parameter (the constant 0 where the output does not depend on it).
/// The adjoints are accumulated symbolically along [`edges`], so the
/// gradient and the evaluators share one set of derivative rules.
///
/// `min` and `max` must not have parameter-dependent operands (they are
/// not smooth); the compiler refuses such laws before differentiating.
pub fn gradient(g: &mut Graph, output: NodeId, n_params: usize) -> Vec<NodeId> {
    let es = edges(g, output);
    let zero = g.num(0.0);
    let mut adj: Vec<Option<NodeId>> = vec![None; output as usize + 1];
    adj[output as usize] = Some(g.num(1.0));
    // Edges come by decreasing `from`, and `to < from`: a node's adjoint
    // is complete before it is passed on.
    for e in es {
        let Some(a) = adj[e.from as usize] else {
            continue;
        };
        let d = g.mul(a, e.partial);
        let slot = &mut adj[e.to as usize];
        *slot = Some(match *slot {
            None => d,
            Some(prev) => g.add(prev, d),
        });
    }
    let mut grad = vec![zero; n_params];
    for (i, a) in adj.iter().enumerate() {
        if let (Node::Param(p), Some(a)) = (g.node(i as NodeId), a) {
            grad[p as usize] = *a;
        }
    }
    grad
}

/// One edge of the backward pass: `to` is an operand of `from`, and
/// `partial` the node holding d from / d to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub from: NodeId,
    pub to: NodeId,
    pub partial: NodeId,
}

/// The local partial derivatives along every edge from a node in the cone
/// of `output` to a parameter-dependent operand, as nodes of the same
/// graph, ordered by decreasing `from` (a valid reverse-mode schedule).
///
/// This is the form the evaluators run: each partial is an ordinary node
/// with its own dependence on the data, so it is evaluated as rarely as
/// that allows (the partial of a per-curve power, once per curve), and the
/// adjoints are accumulated numerically, so the adjoint of a hoisted node
/// is the sum over its points without ever forming per-point gradient
/// expressions.
pub fn edges(g: &mut Graph, output: NodeId) -> Vec<Edge> {
    let dep = param_dependent(g);
    let mut in_cone = vec![false; output as usize + 1];
    in_cone[output as usize] = true;
    let mut out = Vec::new();
    for i in (0..=output as usize).rev() {
        if !in_cone[i] || !dep[i] {
            continue;
        }
        let id = i as NodeId;
        let node = g.node(id);
        for o in node.operands() {
            in_cone[o as usize] = true;
        }
        let mut edge = |to: NodeId, partial: NodeId| {
            if dep[to as usize] {
                out.push(Edge {
                    from: id,
                    to,
                    partial,
                });
            }
        };
        match node {
            Node::Const(_) | Node::Var(_) | Node::Param(_) => {}
            Node::Neg(x) => {
                let m = g.num(-1.0);
                edge(x, m);
            }
            Node::Add(x, y) => {
                let one = g.num(1.0);
                edge(x, one);
                edge(y, one);
            }
            Node::Sub(x, y) => {
                let one = g.num(1.0);
                let m = g.num(-1.0);
                edge(x, one);
                edge(y, m);
            }
            Node::Mul(x, y) => {
                edge(x, y);
                edge(y, x);
            }
            Node::Div(x, y) => {
                // Both partials share one reciprocal: divisions are the
                // slowest vector instruction the evaluators run.
                let one = g.num(1.0);
                let r = g.div(one, y);
                if dep[x as usize] {
                    edge(x, r);
                }
                if dep[y as usize] {
                    let q = g.mul(id, r);
                    let d = g.neg(q);
                    edge(y, d);
                }
            }
            Node::Pow(x, y) => {
                if dep[x as usize] {
                    let one = g.num(1.0);
                    let ym1 = g.sub(y, one);
                    let p = g.pow(x, ym1);
                    let d = g.mul(y, p);
                    edge(x, d);
                }
                if dep[y as usize] {
                    let l = g.log(x);
                    let d = g.mul(id, l);
                    edge(y, d);
                }
            }
            Node::Fn1(f, x) => {
                if let Some(partials) = f.spec().partials {
                    let [d, _] = partials(g, [x, x], id);
                    edge(x, d);
                }
            }
            Node::Fn2(f, x, y) => {
                if let Some(partials) = f.spec().partials {
                    let [dx, dy] = partials(g, [x, y], id);
                    edge(x, dx);
                    edge(y, dy);
                }
            }
            // A sum's partial by an outer value is the sum of its body's.
            Node::Steps(d, ops) => {
                let n = steps::n_args(d);
                for i in 0..n {
                    if dep[ops[2 + i] as usize] {
                        let di = steps::derivative(d, i);
                        let p = g.steps(di, ops[0], ops[1], &ops[2..2 + n]);
                        edge(ops[2 + i], p);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(g: &Graph, id: NodeId, vars: &[f64], params: &[f64]) -> f64 {
        let mut out = Vec::new();
        g.eval_all(id, vars, params, &mut out);
        out[id as usize]
    }

    #[test]
    fn power_law_gradient_matches_the_formula() {
        // A / (N + t1)^alpha
        let mut g = Graph::new();
        let (n, a, t1, alpha) = (g.var(0), g.param(0), g.param(1), g.param(2));
        let s = g.add(n, t1);
        let p = g.pow(s, alpha);
        let f = g.div(a, p);
        let grad = gradient(&mut g, f, 3);
        let (nv, av, tv, alv): (f64, f64, f64, f64) = (3.0, 2.0, 0.5, 0.7);
        let params = [av, tv, alv];
        let base = (nv + tv).powf(alv);
        let want = [
            1.0 / base,
            -av * alv * (nv + tv).powf(-alv - 1.0),
            -av * (nv + tv).ln() / base,
        ];
        for k in 0..3 {
            let got = eval(&g, grad[k], &[nv], &params);
            assert!(
                (got - want[k]).abs() <= 1e-12 * want[k].abs(),
                "{k}: {got} vs {}",
                want[k]
            );
        }
    }

    #[test]
    fn a_parameter_without_effect_gets_a_zero_gradient() {
        let mut g = Graph::new();
        let (x, a) = (g.var(0), g.param(0));
        let _unused = g.param(1);
        let f = g.mul(a, x);
        let grad = gradient(&mut g, f, 2);
        assert!(g.is_const(grad[1], 0.0));
        assert_eq!(g.node(grad[0]), Node::Var(0));
    }
}
