//! Every complete shader in shaders/ parses and validates with naga, before
//! it ever reaches a device. law_common.wgsl, law_main.wgsl,
//! law_points.wgsl, law_grid.wgsl and law_steps.wgsl are the templates of
//! the generated law kernels (lines `//@NAME` are filled in, or mark a
//! part): their generated modules are validated in tests/gpu_laws.rs.

use std::path::Path;

#[test]
fn every_shader_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("shaders/ exists") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("wgsl") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        if src.lines().any(|l| l.trim_start().starts_with("//@")) {
            continue;
        }
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&src)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&src)));
        checked.push(path.file_name().unwrap().to_string_lossy().to_string());
    }
    assert_eq!(checked, ["reduce.wgsl"], "the complete shaders");
}
