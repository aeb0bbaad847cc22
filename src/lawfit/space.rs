//! The space a fit searches: every parameter's rules on this data, the
//! user's fixes, and terms the data cannot tell from a constant fixed out.

use super::*;

/// The rules of every parameter of `b` on this data, `fix` applied, and
/// the theta space with linear parameters measured at the middle of `rows`.
/// `group_of[r]` is row r's `--by` group (all 0 without): each group is
/// fitted apart, so a variable that takes one value in every group's rows
/// is a constant to each fit.
pub(super) fn law_space(
    b: &BoundLaw,
    cols: &Columns,
    rows: &[usize],
    group_of: &[usize],
    fix: &[(String, f64)],
) -> anyhow::Result<(LawSpace, Vec<String>)> {
    let law = &b.law;
    let mut rules = rules(&b.file, law, &cols.vars);
    for (name, v) in fix {
        let Some(r) = rules.iter_mut().find(|r| &r.name == name) else {
            bail!(
                "--fix {name}: the law has no parameter {name} (its parameters: {})",
                law.params.join(", ")
            );
        };
        if !v.is_finite() {
            bail!("--fix {name}={v}: the value must be a finite number");
        }
        if let Some(Err(why)) = b.file.params.get(name).map(|d| d.allows(*v)) {
            bail!(
                "--fix {name}={v}: {why}, as the law file of {} declares {name}",
                b.file.name
            );
        }
        r.fixed = Some(*v);
    }
    let notes = constant_terms(law, cols, rows, group_of, &mut rules);
    let space = LawSpace::new(law, rules, reference(cols, rows));
    Ok((space, notes))
}

/// A term of the law's sum whose variables take one value each over
/// `rows` (T = 1 everywhere under `C/(T + t3)^gamma`) is a constant,
/// which the data cannot tell apart from another constant term (E): it
/// would leave the fit a flat valley. Where the term is a free parameter
/// times the rest, that parameter is fixed at 0 and the parameters only
/// the term reads, left without effect, are held at 1 (or the bound
/// nearest it); the user's fixes are left alone. Returns a note per term.
pub(super) fn constant_terms(
    law: &CompiledLaw,
    cols: &Columns,
    rows: &[usize],
    group_of: &[usize],
    rules: &mut [ParamRule],
) -> Vec<String> {
    let graph = &law.graph;
    // The terms of the sum at the root.
    let mut terms = Vec::new();
    let mut stack = vec![law.value];
    while let Some(id) = stack.pop() {
        match graph.node(id) {
            Node::Add(a, b) | Node::Sub(a, b) => stack.extend([b, a]),
            Node::Neg(a) => stack.push(a),
            _ => terms.push(id),
        }
    }
    let masks = graph.var_masks();
    let grouped = rows.iter().any(|&r| group_of[r] != group_of[rows[0]]);
    let constant_vars: u64 = (0..cols.vars.len())
        .filter(|&v| {
            let col = &cols.vars[v];
            let mut first: HashMap<usize, f64> = HashMap::new();
            !rows.is_empty()
                && rows
                    .iter()
                    .all(|&r| *first.entry(group_of[r]).or_insert(col[r]) == col[r])
        })
        .fold(0, |m, v| m | 1 << v);
    let params_of = |id: NodeId| {
        let mut seen = vec![false; law.params.len()];
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            match graph.node(n) {
                Node::Param(p) => seen[p as usize] = true,
                node => stack.extend(node.operands()),
            }
        }
        seen
    };
    let reads: Vec<Vec<bool>> = terms.iter().map(|&t| params_of(t)).collect();
    let constant = |t: NodeId| masks[t as usize] & !constant_vars == 0;
    let mut notes = Vec::new();
    for (ti, &t) in terms.iter().enumerate() {
        if masks[t as usize] == 0 || !constant(t) {
            continue;
        }
        // Another constant term with a free parameter keeps the level.
        let rival = (0..terms.len()).any(|k| {
            k != ti
                && constant(terms[k])
                && (0..law.params.len()).any(|p| reads[k][p] && rules[p].fixed.is_none())
        });
        let param = |x: NodeId| match graph.node(x) {
            Node::Param(p) => Some(p as usize),
            _ => None,
        };
        let coef = match graph.node(t) {
            Node::Mul(a, b) => param(a).or(param(b)),
            Node::Div(a, _) => param(a),
            _ => None,
        };
        let Some(coef) = coef else { continue };
        let elsewhere = |p: usize| (0..terms.len()).any(|k| k != ti && reads[k][p]);
        if !rival || rules[coef].fixed.is_some() || elsewhere(coef) {
            continue;
        }
        rules[coef].fixed = Some(0.0);
        let mut held = Vec::new();
        for p in 0..law.params.len() {
            if reads[ti][p] && p != coef && rules[p].fixed.is_none() && !elsewhere(p) {
                rules[p].fixed = Some(1.0_f64.clamp(rules[p].lower, rules[p].upper));
                held.push(law.params[p].as_str());
            }
        }
        let vars: Vec<usize> = (0..cols.vars.len())
            .filter(|&v| masks[t as usize] >> v & 1 == 1)
            .collect();
        let names = vars
            .iter()
            .map(|&v| law.variables[v].as_str())
            .collect::<Vec<_>>()
            .join(" and ");
        let values = match grouped {
            true => "in each --by group's rows".to_string(),
            false => format!(
                "in the fitted rows ({})",
                vars.iter()
                    .map(|&v| format!(
                        "{} = {}",
                        law.variables[v],
                        crate::format::format_value(cols.vars[v][rows[0]])
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut note = format!(
            "{names} takes one value {values}, so the term {} is a constant the data cannot \
             tell apart from the law's other constant: fixed {} = 0",
            show(law, t),
            law.params[coef]
        );
        if !held.is_empty() {
            note.push_str(&format!(", {} without effect", held.join(" and ")));
        }
        notes.push(note);
    }
    notes
}
