//! `devices`: the GPU adapters wgpu can see.

use clap::Args;

use super::term::say;
use sweepfit::backend::gpu::{self, AdapterSummary};

#[derive(Args)]
pub(crate) struct DevicesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn cmd_devices(a: DevicesArgs) -> anyhow::Result<()> {
    let inst = gpu::instance()?;
    let adapters: Vec<AdapterSummary> = gpu::all_adapters(&inst)
        .iter()
        .map(AdapterSummary::of)
        .collect();
    if a.json {
        say!("{}", serde_json::to_string_pretty(&adapters)?);
        return Ok(());
    }
    if adapters.is_empty() {
        say!("no GPU adapters found (the CPU backend is always available)");
        return Ok(());
    }
    for (i, ad) in adapters.iter().enumerate() {
        say!("[{i}] {}", ad.name);
        say!(
            "    backend {}, {}, driver {} {}",
            ad.backend,
            ad.device_type,
            ad.driver,
            ad.driver_info
        );
        say!(
            "    max storage binding {} MiB, max buffer {} MiB, max workgroups per dimension {}, workgroup storage {} KiB, invocations per workgroup {}",
            ad.max_storage_buffer_binding_size >> 20,
            ad.max_buffer_size >> 20,
            ad.max_compute_workgroups_per_dimension,
            ad.max_compute_workgroup_storage_size >> 10,
            ad.max_compute_invocations_per_workgroup
        );
    }
    Ok(())
}
