//! `devices`: the GPU adapters wgpu can see.

use clap::Args;

use sweepfit::backend::gpu::{self, AdapterSummary};

#[derive(Args)]
pub(crate) struct DevicesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn cmd_devices(a: DevicesArgs) -> anyhow::Result<()> {
    let inst = gpu::instance();
    let adapters: Vec<AdapterSummary> = gpu::all_adapters(&inst)
        .iter()
        .map(AdapterSummary::of)
        .collect();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&adapters)?);
        return Ok(());
    }
    if adapters.is_empty() {
        println!("no GPU adapters found (the CPU backend is always available)");
        return Ok(());
    }
    for (i, ad) in adapters.iter().enumerate() {
        println!("[{i}] {}", ad.name);
        println!(
            "    backend {}, {}, driver {} {}",
            ad.backend, ad.device_type, ad.driver, ad.driver_info
        );
        println!(
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
