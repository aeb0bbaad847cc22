//! The GPU side of the command line: adapter listing, backend choice and
//! the wgpu environment conventions. Needs a GPU adapter (Mesa's lavapipe
//! in CI): fails without one when SWEEPFIT_REQUIRE_GPU=1, else skips.

mod common;

use std::process::{Command, Output};

fn sweepfit(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sweepfit"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run sweepfit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "sweepfit panicked: {stderr}");
    out
}

fn have_gpu() -> bool {
    use sweepfit::backend::gpu;
    match gpu::instance().and_then(|inst| gpu::select_adapter(&inst, gpu::AdapterFilter::Any)) {
        Ok(_) => true,
        Err(e) => {
            assert!(
                std::env::var("SWEEPFIT_REQUIRE_GPU").as_deref() != Ok("1"),
                "SWEEPFIT_REQUIRE_GPU=1 but no adapter: {e}"
            );
            eprintln!("skipping GPU CLI test: {e}");
            false
        }
    }
}

fn simulated(dir: &std::path::Path) -> String {
    let csv = dir.join("sim.csv");
    let out = sweepfit(
        &[
            "simulate",
            "--out",
            csv.to_str().unwrap(),
            "--points",
            "60",
            "--seed",
            "3",
        ],
        &[],
    );
    assert!(out.status.success());
    csv.to_str().unwrap().to_string()
}

#[test]
fn devices_lists_the_adapter_with_its_limits() {
    if !have_gpu() {
        return;
    }
    let out = sweepfit(&["devices"], &[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("max storage binding"), "{text}");
    let json = sweepfit(&["devices", "--json"], &[]);
    let v: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("devices --json is JSON");
    let first = &v.as_array().expect("an array")[0];
    for key in [
        "name",
        "backend",
        "device_type",
        "driver",
        "max_storage_buffer_binding_size",
    ] {
        assert!(first.get(key).is_some(), "missing {key}: {first}");
    }
}

#[test]
fn gpu_backend_fits_and_says_so() {
    if !have_gpu() {
        return;
    }
    let dir = common::tempdir();
    let csv = simulated(dir.path());
    let out_dir = dir.path().join("out");
    let out = sweepfit(
        &[
            "fit",
            &csv,
            "--backend",
            "gpu",
            "--starts",
            "16",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("fit.json")).unwrap()).unwrap();
    assert_eq!(v["backend"]["kind"], "gpu");
    assert!(v["metrics"]["r2"].as_f64().unwrap() > 0.99);
    assert!(
        v["notes"].to_string().contains("refined on the CPU"),
        "{}",
        v["notes"]
    );
}

#[test]
fn unknown_adapter_name_is_an_error_for_gpu_and_a_fallback_for_auto() {
    let dir = common::tempdir();
    let csv = simulated(dir.path());
    let env = [("WGPU_ADAPTER_NAME", "no-such-adapter-xyz")];
    let gpu_out = dir.path().join("gpu");
    let out = sweepfit(
        &[
            "fit",
            &csv,
            "--backend",
            "gpu",
            "--starts",
            "4",
            "--out",
            gpu_out.to_str().unwrap(),
        ],
        &env,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("WGPU_ADAPTER_NAME=no-such-adapter-xyz matches no adapter"),
        "{err}"
    );
    assert!(
        !gpu_out.exists(),
        "a failed fit must not create its output folder"
    );

    let auto_out = dir.path().join("auto");
    let out = sweepfit(
        &[
            "fit",
            &csv,
            "--starts",
            "4",
            "--out",
            auto_out.to_str().unwrap(),
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("backend auto: using the CPU"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(auto_out.join("fit.json")).unwrap()).unwrap();
    assert_eq!(v["backend"]["kind"], "cpu");
}
