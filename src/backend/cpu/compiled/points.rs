//! The point layout: each curve along its own points, in spans inside
//! one curve (curve nodes once per curve, the rest per point; a fused
//! power term per span, see `power`).

use super::*;

/// Targets and weights of the point layout, one per curve, or why it does
/// not fit.
pub(super) fn point_cells(sweep: &Sweep, plan: &Plan) -> Result<(Vec<f64>, Vec<f64>), String> {
    let nc = sweep.curves.len();
    let (mut y, mut w) = (vec![f64::NAN; nc], vec![0.0; nc]);
    for (c, r) in sweep.curves.iter().enumerate() {
        match r.len() {
            0 => {}
            1 => {
                y[c] = sweep.y[r.start];
                w[c] = sweep.w[r.start];
            }
            k => {
                return Err(format!(
                    "the sweep has no axis variable, yet curve {c} has {k} points: \
                     without an axis every curve must be a single point"
                ))
            }
        }
    }
    // Only a plan made for another sweep could have them.
    if !plan.forward[Class::Axis as usize].is_empty()
        || !plan.forward[Class::Point as usize].is_empty()
    {
        return Err("the plan has per-point nodes, which one-point curves do not have".into());
    }
    Ok((y, w))
}

/// The point layout: per block of curves (one point each) and per start of
/// the batch, the curve nodes, the loss over the prediction's array, its
/// derivative as the seed of the prediction's adjoint, and the curve edges
/// back.
#[inline(always)]
pub(super) fn point_batch<const FMA: bool>(
    cg: &CpuLaw,
    params: &[f64],
    group: usize,
    k: usize,
    ws: &mut Workspace,
    wt: Weights,
) {
    let value = cg.plan.value();
    let np = cg.plan.n_params().max(1);
    let nc = cg.n_curves;
    let Workspace {
        starts,
        cvals,
        cadj,
        seed,
        row_pred,
        eff,
        ..
    } = ws;
    for bi in cg.groups[group].clone() {
        let c0 = bi * TILE;
        let m = TILE.min(nc - c0);
        // Weight-0 points add exactly nothing, whatever their target and
        // prediction: their seed is 0 (see cell), and a 0 adjoint passes
        // nothing back (see dot).
        let y = &cg.y[c0..c0 + m];
        for (j, (st, p)) in starts[..k].iter_mut().zip(params.chunks(np)).enumerate() {
            let w = match wt.get(j) {
                Some((wk, r)) => &eff.get(cg, bi, wk, r)[..m],
                None => &cg.w[c0..c0 + m],
            };
            let StartState {
                start, start_adj, ..
            } = st;
            class_forward::<FMA>(cg, Class::Curve, c0, m, p, start, cvals, cadj);
            st.f += match cg.plan.class[value as usize] {
                Class::Curve => {
                    let (s, a) = (cg.cslot[value as usize], cg.aslot[value as usize]);
                    loss_cells::<FMA>(cg.objective, &cvals[s][..m], y, w, &mut cadj[a][..m])
                }
                // A prediction without parameters: no gradient.
                Class::Data => {
                    let pred = &cg.data_of(value)[c0..c0 + m];
                    loss_cells::<FMA>(cg.objective, pred, y, w, &mut seed[..m])
                }
                // A law without variables: one prediction for every point.
                _ => {
                    row_pred[..m].fill(start[value as usize]);
                    let f = loss_cells::<FMA>(cg.objective, &row_pred[..m], y, w, &mut seed[..m]);
                    start_adj[value as usize] += lane_sum(&seed[..m]);
                    f
                }
            };
            class_backward(
                cg,
                Class::Curve,
                c0,
                m,
                start,
                IntoStart::Sum(start_adj),
                cvals,
                &cg.cslot,
                cadj,
            );
        }
    }
}
