//! Finding and describing adapters, honouring the wgpu conventions
//! WGPU_BACKEND (which APIs), WGPU_ADAPTER_NAME (substring of the adapter's
//! name) and WGPU_POWER_PREF (low or high).

use anyhow::bail;
use serde::Serialize;

/// Which adapters a backend choice accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterFilter {
    /// Hardware GPUs only (discrete, integrated or virtualised).
    Hardware,
    /// Any adapter, software rasterisers included.
    Any,
}

/// What `sweepfit devices` prints about an adapter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_compute_workgroups_per_dimension: u32,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
}

impl AdapterSummary {
    pub fn of(adapter: &wgpu::Adapter) -> AdapterSummary {
        let info = adapter.get_info();
        let limits = adapter.limits();
        AdapterSummary {
            name: info.name,
            backend: format!("{:?}", info.backend),
            device_type: device_type_name(info.device_type).to_string(),
            driver: info.driver,
            driver_info: info.driver_info,
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_buffer_size: limits.max_buffer_size,
            max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
        }
    }

    /// One line for messages: "name (type, backend)".
    pub fn short(&self) -> String {
        format!("{} ({}, {})", self.name, self.device_type, self.backend)
    }
}

pub fn device_type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete GPU",
        wgpu::DeviceType::IntegratedGpu => "integrated GPU",
        wgpu::DeviceType::VirtualGpu => "virtual GPU",
        wgpu::DeviceType::Cpu => "software (CPU)",
        wgpu::DeviceType::Other => "other",
    }
}

fn is_hardware(t: wgpu::DeviceType) -> bool {
    matches!(
        t,
        wgpu::DeviceType::DiscreteGpu
            | wgpu::DeviceType::IntegratedGpu
            | wgpu::DeviceType::VirtualGpu
    )
}

/// The APIs to look at: WGPU_BACKEND if set, else the native compute APIs
/// (Vulkan, Metal, DX12). OpenGL is left out by default: its compute
/// support is the weakest and probing it prints display-server noise.
fn backends() -> wgpu::Backends {
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY)
}

/// Names WGPU_BACKEND accepts (comma-separated), as wgpu reads them.
const BACKEND_NAMES: [&str; 8] = [
    "vulkan", "vk", "metal", "mtl", "dx12", "d3d12", "gl", "opengl",
];

/// Refuse WGPU_BACKEND and WGPU_POWER_PREF values that wgpu would ignore
/// silently (an unknown backend name reads as "no backends", which looks
/// like "no GPU").
pub fn check_env() -> anyhow::Result<()> {
    if let Some(v) = std::env::var_os("WGPU_BACKEND") {
        let v = v.to_string_lossy();
        let accepted = || format!("{} (comma-separated)", BACKEND_NAMES.join(", "));
        if v.trim().is_empty() {
            bail!("WGPU_BACKEND is set but empty; accepted: {}", accepted());
        }
        for name in v.split(',') {
            let n = name.trim().to_lowercase();
            if !BACKEND_NAMES.contains(&n.as_str()) && n != "gles" {
                bail!(
                    "WGPU_BACKEND={v}: unknown backend '{}'; accepted: {}",
                    name.trim(),
                    accepted()
                );
            }
        }
    }
    if let Some(v) = std::env::var_os("WGPU_POWER_PREF") {
        let v = v.to_string_lossy();
        if !["low", "high", "none"].contains(&v.to_lowercase().as_str()) {
            bail!("WGPU_POWER_PREF={v}: accepted values are low, high and none");
        }
    }
    Ok(())
}

/// The process's wgpu instance over the backends to look at, after
/// checking the wgpu environment variables. One instance serves every
/// caller (clones share it): test processes that created and dropped
/// instances on several threads at once, while other threads spawned
/// processes, crashed on NVIDIA's Vulkan driver.
pub fn instance() -> anyhow::Result<wgpu::Instance> {
    static INSTANCE: std::sync::OnceLock<wgpu::Instance> = std::sync::OnceLock::new();
    check_env()?;
    Ok(INSTANCE
        .get_or_init(|| {
            let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
            desc.backends = backends();
            wgpu::Instance::new(desc)
        })
        .clone())
}

/// Mesa's implicit Vulkan layer VK_LAYER_MESA_device_select only reorders
/// adapters (sweepfit picks its own), and on a machine without a display
/// server it prints "error: XDG_RUNTIME_DIR is invalid or not set" while
/// probing: a harmless message that reads as a failure. The layer's own
/// switch turns it off, unless the user set it.
///
/// It writes the environment, so the program calls it first thing, before
/// any thread starts: a write while another thread reads the environment
/// (spawning a process, a driver looking up a variable) is undefined
/// behaviour and can crash the process.
pub fn quiet_device_select_layer() {
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

/// Every adapter the instance can see.
pub fn all_adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(backends()))
}

/// Pick the adapter to run on: those passing `filter` and WGPU_ADAPTER_NAME,
/// ordered by WGPU_POWER_PREF (default: high performance, discrete first).
pub fn select_adapter(
    instance: &wgpu::Instance,
    filter: AdapterFilter,
) -> anyhow::Result<wgpu::Adapter> {
    let all = all_adapters(instance);
    let listing = || {
        if all.is_empty() {
            "none found (is a Vulkan, Metal or DX12 driver installed?)".to_string()
        } else {
            all.iter()
                .map(|a| AdapterSummary::of(a).short())
                .collect::<Vec<_>>()
                .join("; ")
        }
    };
    let wanted_name = std::env::var("WGPU_ADAPTER_NAME")
        .ok()
        .filter(|s| !s.is_empty());
    let mut candidates: Vec<&wgpu::Adapter> = all
        .iter()
        .filter(|a| match &wanted_name {
            Some(n) => a.get_info().name.to_lowercase().contains(&n.to_lowercase()),
            None => true,
        })
        .collect();
    if let Some(n) = &wanted_name {
        if candidates.is_empty() {
            bail!(
                "WGPU_ADAPTER_NAME={n} matches no adapter; adapters: {}",
                listing()
            );
        }
    }
    if filter == AdapterFilter::Hardware {
        candidates.retain(|a| is_hardware(a.get_info().device_type));
    }
    let low_power = wgpu::PowerPreference::from_env() == Some(wgpu::PowerPreference::LowPower);
    let rank = |a: &wgpu::Adapter| {
        let info = a.get_info();
        let kind = match (info.device_type, low_power) {
            (wgpu::DeviceType::DiscreteGpu, false) | (wgpu::DeviceType::IntegratedGpu, true) => 0,
            (wgpu::DeviceType::IntegratedGpu, false) | (wgpu::DeviceType::DiscreteGpu, true) => 1,
            (wgpu::DeviceType::VirtualGpu, _) => 2,
            (wgpu::DeviceType::Cpu, _) => 3,
            (wgpu::DeviceType::Other, _) => 4,
        };
        // Native compute APIs before OpenGL.
        let api = if info.backend == wgpu::Backend::Gl {
            1
        } else {
            0
        };
        (kind, api)
    };
    candidates.sort_by_key(|a| rank(a));
    match candidates.first() {
        Some(a) => Ok((*a).clone()),
        None => match filter {
            AdapterFilter::Hardware => bail!("no hardware GPU adapter; adapters: {}", listing()),
            AdapterFilter::Any => bail!("no GPU adapter; adapters: {}", listing()),
        },
    }
}
