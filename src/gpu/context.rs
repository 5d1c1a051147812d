//! The GPU context: adapter and device, error mapping, pipeline cache and buffer helpers.

use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wgpu::util::DeviceExt;

/// How a kernel binds a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binding {
    /// A uniform block selected per dispatch by a dynamic offset.
    UniformDynamic,
    StorageRead,
    StorageReadWrite,
}

/// A compiled kernel: its pipeline and the bind group layout (group 0) it expects.
pub struct Kernel {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// Owns (or borrows from a host application) a device and queue.
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: Option<wgpu::AdapterInfo>,
    kernels: Mutex<HashMap<(String, String), Arc<Kernel>>>,
    /// Errors no error scope caught (only collected on devices this context created).
    uncaptured: Arc<Mutex<Vec<String>>>,
    /// Why the device was lost (only watched on devices this context created).
    lost: Arc<Mutex<Option<String>>>,
    /// Readbacks so far ([`Self::readbacks`]).
    readbacks: std::sync::atomic::AtomicU64,
    /// What error scopes caught after their call returned (a browser cannot wait for the pops):
    /// reported by the next [`GpuContext::check`].
    #[cfg(target_arch = "wasm32")]
    deferred: Arc<Mutex<Vec<Error>>>,
}

/// The error of a call that would have to block on the GPU, in a browser build.
#[cfg(target_arch = "wasm32")]
fn browser_cannot_wait(what: &str) -> Error {
    Error::Unsupported(format!(
        "{what} waits for the GPU, which a browser's event loop cannot do: request the adapter and device with \
         `.await`, wrap them with GpuContext::from_device, and read results with read_buffers_async or read_state_async"
    ))
}

/// The adapters wgpu sees, with the backends selected by `WGPU_BACKEND` (none in a browser
/// build, where listing would block).
#[cfg(target_arch = "wasm32")]
pub fn list_adapters() -> Vec<wgpu::AdapterInfo> {
    Vec::new()
}

/// The adapters wgpu sees, with the backends selected by `WGPU_BACKEND`.
#[cfg(not(target_arch = "wasm32"))]
pub fn list_adapters() -> Vec<wgpu::AdapterInfo> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all())).iter().map(|a| a.get_info()).collect()
}

impl GpuContext {
    /// Opens the best adapter, a software one (lavapipe, llvmpipe) included if nothing else
    /// opens. `WGPU_BACKEND` (vulkan, gl, metal, dx12) restricts backends and
    /// `WGPU_ADAPTER_NAME` picks the first adapter whose name contains it (case-insensitive).
    /// [`crate::gpu::Backend::open`] applies the executor policy on top of this. Blocks on the
    /// adapter and device requests: not in a browser build (there, [`Self::from_device`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Self> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        Self::open(Self::pick_adapter(&instance)?)
    }

    /// In a browser build, [`Error::Unsupported`]: the adapter and device requests would block.
    /// Request them with `.await` and use [`Self::from_device`].
    #[cfg(target_arch = "wasm32")]
    pub fn new() -> Result<Self> {
        Err(browser_cannot_wait("GpuContext::new"))
    }

    /// [`Self::new`] for hardware only, which fails in a browser build as [`Self::new`] does.
    #[cfg(target_arch = "wasm32")]
    pub fn new_hardware() -> Result<Self> {
        Err(browser_cannot_wait("GpuContext::new_hardware"))
    }

    /// Like [`Self::new`], but only a hardware adapter: fails with [`Error::NoAdapter`] (naming
    /// what was found) when the only adapters are software rasterisers, which run our kernels
    /// far slower than the CPU executor. This is what `Backend::Auto` opens.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_hardware() -> Result<Self> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = Self::pick_adapter(&instance)?;
        if !crate::gpu::executor::is_software(&adapter.get_info()) {
            return Self::open(adapter);
        }
        // The preferred adapter is software; another one may still be hardware.
        let wanted = std::env::var("WGPU_ADAPTER_NAME").unwrap_or_default().to_lowercase();
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        let infos: Vec<wgpu::AdapterInfo> = adapters.iter().map(|a| a.get_info()).collect();
        let candidates: Vec<wgpu::AdapterInfo> =
            infos.iter().filter(|i| i.name.to_lowercase().contains(&wanted)).cloned().collect();
        match crate::gpu::executor::auto_choice(&candidates) {
            Some(i) => {
                let name = &candidates[i].name;
                let adapter = adapters.into_iter().find(|a| a.get_info().name == *name).expect("adapter listed above");
                Self::open(adapter)
            }
            None => Err(Error::NoAdapter(format!(
                "only software adapters: {}",
                infos.iter().map(|i| format!("{} [{:?}]", i.name, i.backend)).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn pick_adapter(instance: &wgpu::Instance) -> Result<wgpu::Adapter> {
        Ok(match std::env::var("WGPU_ADAPTER_NAME") {
            Ok(wanted) if !wanted.is_empty() => {
                let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
                let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
                adapters
                    .into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&wanted.to_lowercase()))
                    .ok_or_else(|| Error::NoAdapter(format!("none matches WGPU_ADAPTER_NAME={wanted:?}; found {names:?}")))?
            }
            _ => pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            }))
            .map_err(|e| {
                Error::NoAdapter(format!(
                    "{e} (on Debian/Ubuntu, `apt-get install mesa-vulkan-drivers` provides the lavapipe software adapter)"
                ))
            })?,
        })
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn open(adapter: wgpu::Adapter) -> Result<Self> {
        let info = adapter.get_info();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("ebm-gpu"),
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .map_err(|e| Error::RequestDevice(e.to_string()))?;
        let ctx = Self::from_device(device, queue, Some(info));
        let lost_sink = ctx.lost.clone();
        ctx.device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut l) = lost_sink.lock() {
                *l = Some(format!("{reason:?}: {message}"));
            }
        });
        // wgpu's default handler panics; on our own device we collect instead.
        let sink = ctx.uncaptured.clone();
        ctx.device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        Ok(ctx)
    }

    /// Wraps a host application's device and queue. The host's callbacks (uncaptured errors,
    /// device loss) are left alone: this context reports its own errors through error scopes,
    /// and a lost device through the errors of its next call.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, info: Option<wgpu::AdapterInfo>) -> Self {
        Self {
            device,
            queue,
            info,
            kernels: Mutex::new(HashMap::new()),
            uncaptured: Arc::default(),
            lost: Arc::default(),
            readbacks: Default::default(),
            #[cfg(target_arch = "wasm32")]
            deferred: Arc::default(),
        }
    }

    /// How many times this context has read device memory back to the host (blocking or
    /// not): hosts and tests check that frames run without one.
    pub fn readbacks(&self) -> u64 {
        self.readbacks.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    pub fn adapter_info(&self) -> Option<&wgpu::AdapterInfo> {
        self.info.as_ref()
    }

    /// "name (backend, driver)" for reports.
    pub fn describe(&self) -> String {
        match &self.info {
            Some(i) => format!("{} ({:?}, {} {})", i.name, i.backend, i.driver, i.driver_info).trim_end().to_string(),
            None => "host-provided device".into(),
        }
    }

    pub fn limits(&self) -> wgpu::Limits {
        self.device.limits()
    }

    /// Reports a lost device or an error that escaped the scopes (in a browser build, also
    /// the first error a scope caught after its call returned).
    pub fn check(&self, context: &str) -> Result<()> {
        #[cfg(target_arch = "wasm32")]
        if let Some(e) = self.deferred.lock().ok().and_then(|mut v| (!v.is_empty()).then(|| v.remove(0))) {
            return Err(e);
        }
        if let Some(reason) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return Err(Error::DeviceLost(reason));
        }
        let mut errors = self.uncaptured.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default();
        match errors.pop() {
            Some(message) => Err(Error::GpuValidation { context: context.into(), message }),
            None => Ok(()),
        }
    }

    /// Blocks until all submitted work is done. In a browser build nothing can block: it only
    /// reports errors so far ([`Self::check`]); the queue still runs submissions in order.
    pub fn wait(&self) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::DeviceLost(format!("waiting for the GPU: {e}")))?;
        self.check("GPU work")
    }

    /// Copies `size` bytes of each buffer into one staging buffer and maps it: one round trip
    /// for several reads. Blocks; in a browser build it fails ([`Error::Unsupported`]): use
    /// [`Self::read_buffers_async`].
    pub fn read_buffers(&self, parts: &[(&wgpu::Buffer, u64)]) -> Result<Vec<Vec<u8>>> {
        #[cfg(target_arch = "wasm32")]
        if !parts.is_empty() {
            return Err(browser_cannot_wait("a blocking readback (read_buffers)"));
        }
        let total: u64 = parts.iter().map(|(_, s)| s.next_multiple_of(4)).sum();
        if total == 0 {
            return Ok(parts.iter().map(|_| Vec::new()).collect());
        }
        let staging = self.copy_to_staging(parts, total)?;
        let (tx, rx) = std::sync::mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| Error::DeviceLost("buffer mapping was cancelled".into()))?
            .map_err(|e| Error::GpuValidation { context: "mapping readback buffer".into(), message: e.to_string() })?;
        split_mapped(&staging, parts.iter().map(|(_, size)| *size).collect())
    }

    /// [`Self::read_buffers`] without blocking: the copies are submitted now and the future
    /// resolves once the staging buffer is mapped. Nothing here polls the device: in a browser
    /// the event loop does; on native, the host's next `device.poll` or `queue.submit` does.
    pub fn read_buffers_async(&self, parts: &[(&wgpu::Buffer, u64)]) -> Result<Readback> {
        let sizes: Vec<u64> = parts.iter().map(|(_, size)| *size).collect();
        let total: u64 = sizes.iter().map(|s| s.next_multiple_of(4)).sum();
        let shared = Arc::new(Mutex::new(ReadbackState::default()));
        if total == 0 {
            shared.lock().map_err(|_| Error::DeviceLost("readback state poisoned".into()))?.mapped = Some(Ok(()));
            return Ok(Readback { staging: None, sizes, shared });
        }
        let staging = self.copy_to_staging(parts, total)?;
        let sink = shared.clone();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            if let Ok(mut state) = sink.lock() {
                state.mapped = Some(r.map_err(|e| e.to_string()));
                if let Some(waker) = state.waker.take() {
                    waker.wake();
                }
            }
        });
        Ok(Readback { staging: Some(staging), sizes, shared })
    }

    /// Submits copies of `parts` into one new staging buffer of `total` bytes.
    fn copy_to_staging(&self, parts: &[(&wgpu::Buffer, u64)], total: u64) -> Result<wgpu::Buffer> {
        self.readbacks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.scoped("reading back results", || {
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback staging"),
                size: total,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder =
                self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
            let mut offset = 0;
            for (buffer, size) in parts {
                let size = size.next_multiple_of(4);
                encoder.copy_buffer_to_buffer(buffer, 0, &staging, offset, size);
                offset += size;
            }
            self.queue.submit([encoder.finish()]);
            staging
        })
    }
}

/// The engine's helpers on a [`GpuContext`]: error scopes, submissions, the pipeline cache,
/// storage buffers and the adapter's loop cap. A crate-private extension trait rather than
/// inherent methods, so an application that shares its device through the prelude's
/// `GpuContext` sees only what it needs (the device, readbacks, error checks); the crate's
/// own tests name it through the `internals` feature.
pub trait ContextInternals {
    /// Loop iterations one shader invocation may run, where the adapter caps them: Mesa's
    /// llvmpipe (lavapipe, and GL on llvmpipe) ends every loop of an invocation once 65535
    /// iterations have run in total, silently, so launchers keep each invocation below this.
    /// None: no known cap.
    fn loop_budget(&self) -> Option<u64>;

    /// Fails with a clear message when `iterations` per invocation would exceed the adapter's
    /// loop cap (see [`Self::loop_budget`]).
    fn check_loop_budget(&self, what: &str, iterations: u64) -> Result<()>;

    /// Records one compute pass with `record` and submits it, inside [`Self::scoped`] (errors
    /// name `label`). Every kernel launch of the engine goes through this or [`Self::submit`];
    /// parameter slots written to the queue while recording land before the submission.
    fn submit_pass(&self, label: &str, record: impl FnOnce(&mut wgpu::ComputePass)) -> Result<()>;

    /// Records into a fresh command encoder with `record` (passes of its own, as the sampler's
    /// host-encoder API writes them) and submits it, inside [`Self::scoped`].
    fn submit(&self, label: &str, record: impl FnOnce(&mut wgpu::CommandEncoder)) -> Result<()>;

    /// Runs `f` inside validation and out-of-memory error scopes and turns what they caught
    /// (or what the uncaptured handler or device-lost callback saw) into an [`Error`]. In a
    /// browser the event loop cannot wait for the scopes' pops, so they resolve later and what
    /// they caught is reported by the next [`GpuContext::check`] (every `scoped` call starts
    /// with one; a host's frame loop can call it too).
    fn scoped<T>(&self, context: &str, f: impl FnOnce() -> T) -> Result<T>;

    /// A kernel from assembled WGSL, cached by (label, source, entry point). The source is
    /// validated by naga first so shader errors come with naga's diagnostic; the bind group
    /// layout is the module's own ([`crate::gpu::shader::bindings_of`]).
    fn kernel(&self, label: &str, wgsl: &str, entry: &str) -> Result<Arc<Kernel>>;

    /// A labelled storage buffer holding `data` (copyable both ways).
    fn storage_buffer(&self, label: &str, data: &[u8]) -> wgpu::Buffer;

    /// [`Self::storage_buffer`] with `extra` usages too (e.g. VERTEX for buffers a host draws).
    fn storage_buffer_with(&self, label: &str, data: &[u8], extra: wgpu::BufferUsages) -> wgpu::Buffer;

    /// A labelled zero-filled storage buffer of `size` bytes (at least 4).
    fn zeroed_storage_buffer(&self, label: &str, size: u64) -> wgpu::Buffer;

    /// [`Self::zeroed_storage_buffer`] with `extra` usages too.
    fn zeroed_storage_buffer_with(&self, label: &str, size: u64, extra: wgpu::BufferUsages) -> wgpu::Buffer;
}

impl ContextInternals for GpuContext {
    fn loop_budget(&self) -> Option<u64> {
        self.info.as_ref().filter(|i| i.name.to_lowercase().contains("llvmpipe")).map(|_| 65_535)
    }

    fn check_loop_budget(&self, what: &str, iterations: u64) -> Result<()> {
        match self.loop_budget() {
            Some(budget) if iterations > budget => Err(Error::Limit(format!(
                "{what} needs about {iterations} shader loop iterations per invocation, but this adapter ({}) stops \
                 shader loops after {budget}; use the CPU executor or a hardware GPU",
                self.describe()
            ))),
            _ => Ok(()),
        }
    }

    fn submit_pass(&self, label: &str, record: impl FnOnce(&mut wgpu::ComputePass)) -> Result<()> {
        self.submit(label, |encoder| {
            let mut pass =
                encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes: None });
            record(&mut pass);
        })
    }

    fn submit(&self, label: &str, record: impl FnOnce(&mut wgpu::CommandEncoder)) -> Result<()> {
        self.scoped(label, || {
            let mut encoder =
                self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
            record(&mut encoder);
            self.queue().submit([encoder.finish()]);
        })
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn scoped<T>(&self, context: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let validation_error = pollster::block_on(validation.pop());
        let oom_error = pollster::block_on(oom.pop());
        if let Some(e) = oom_error {
            let _ = e;
            return Err(Error::GpuOutOfMemory { context: context.into() });
        }
        if let Some(e) = validation_error {
            return Err(Error::GpuValidation { context: context.into(), message: e.to_string() });
        }
        self.check(context)?;
        Ok(value)
    }

    #[cfg(target_arch = "wasm32")]
    fn scoped<T>(&self, context: &str, f: impl FnOnce() -> T) -> Result<T> {
        self.check(context)?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        // Popping takes effect at once; only the results arrive later.
        let (validation, oom) = (validation.pop(), oom.pop());
        let (sink, context) = (self.deferred.clone(), context.to_string());
        wasm_bindgen_futures::spawn_local(async move {
            let oom = oom.await.map(|_| Error::GpuOutOfMemory { context: context.clone() });
            let validation = validation.await.map(|e| Error::GpuValidation { context, message: e.to_string() });
            for e in oom.into_iter().chain(validation) {
                log::error!("{e}");
                if let Ok(mut v) = sink.lock() {
                    v.push(e);
                }
            }
        });
        Ok(value)
    }

    fn kernel(&self, label: &str, wgsl: &str, entry: &str) -> Result<Arc<Kernel>> {
        let key = (format!("{label}:{entry}"), wgsl.to_string());
        if let Some(k) = self.kernels.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(k);
        }
        let (module, info) = crate::gpu::shader::validate_with_info(label, wgsl)?;
        let needs = crate::gpu::shader::entry_needs(&module, &info, entry);
        let bindings = crate::gpu::shader::bindings_of(label, &module)?;
        check_limits(&self.limits(), &format!("{label}:{entry}"), &bindings, needs)?;
        let kernel = self.scoped(&format!("creating pipeline {label}:{entry}"), || {
            let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                    binding: i as u32,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: match b {
                            Binding::UniformDynamic => wgpu::BufferBindingType::Uniform,
                            Binding::StorageRead => wgpu::BufferBindingType::Storage { read_only: true },
                            Binding::StorageReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                        },
                        has_dynamic_offset: *b == Binding::UniformDynamic,
                        min_binding_size: None,
                    },
                    count: None,
                })
                .collect();
            let layout = self
                .device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(label), entries: &entries });
            let pipeline_layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(label),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(wgsl.into()),
            });
            let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&format!("{label}:{entry}")),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
            Arc::new(Kernel { pipeline, layout })
        })?;
        if let Ok(mut m) = self.kernels.lock() {
            m.insert(key, kernel.clone());
        }
        Ok(kernel)
    }

    fn storage_buffer(&self, label: &str, data: &[u8]) -> wgpu::Buffer {
        self.storage_buffer_with(label, data, wgpu::BufferUsages::empty())
    }

    fn storage_buffer_with(&self, label: &str, data: &[u8], extra: wgpu::BufferUsages) -> wgpu::Buffer {
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: data,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST | extra,
        })
    }

    fn zeroed_storage_buffer(&self, label: &str, size: u64) -> wgpu::Buffer {
        self.zeroed_storage_buffer_with(label, size, wgpu::BufferUsages::empty())
    }

    fn zeroed_storage_buffer_with(&self, label: &str, size: u64, extra: wgpu::BufferUsages) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST | extra,
            mapped_at_creation: false,
        })
    }
}

/// The bytes of each part (sizes as asked) from a mapped staging buffer, which is unmapped after.
fn split_mapped(staging: &wgpu::Buffer, sizes: Vec<u64>) -> Result<Vec<Vec<u8>>> {
    let view = staging
        .get_mapped_range(..)
        .map_err(|e| Error::GpuValidation { context: "mapping readback buffer".into(), message: e.to_string() })?;
    let mut out = Vec::with_capacity(sizes.len());
    let mut offset = 0usize;
    for size in sizes {
        out.push(view[offset..offset + size as usize].to_vec());
        offset += size.next_multiple_of(4) as usize;
    }
    drop(view);
    staging.unmap();
    Ok(out)
}

#[derive(Default)]
struct ReadbackState {
    mapped: Option<std::result::Result<(), String>>,
    waker: Option<std::task::Waker>,
}

/// A readback in flight ([`GpuContext::read_buffers_async`]): a future of each part's bytes.
pub struct Readback {
    staging: Option<wgpu::Buffer>,
    sizes: Vec<u64>,
    shared: Arc<Mutex<ReadbackState>>,
}

impl std::future::Future for Readback {
    type Output = Result<Vec<Vec<u8>>>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        let mut state = match this.shared.lock() {
            Ok(state) => state,
            Err(_) => return std::task::Poll::Ready(Err(Error::DeviceLost("readback state poisoned".into()))),
        };
        match state.mapped.take() {
            None => {
                state.waker = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
            Some(Err(e)) => std::task::Poll::Ready(Err(Error::GpuValidation {
                context: "mapping readback buffer".into(),
                message: e,
            })),
            Some(Ok(())) => std::task::Poll::Ready(match &this.staging {
                Some(staging) => split_mapped(staging, std::mem::take(&mut this.sizes)),
                None => Ok(this.sizes.iter().map(|_| Vec::new()).collect()),
            }),
        }
    }
}

/// Refuses a kernel the device's limits cannot hold — a host's device made with lower limits
/// than the adapter's (wgpu's defaults, downlevel or WebGL2 limits) — naming the limit, before
/// wgpu would raise a validation error on the host's device.
fn check_limits(
    limits: &wgpu::Limits,
    kernel: &str,
    bindings: &[Binding],
    needs: Option<crate::gpu::shader::EntryNeeds>,
) -> Result<()> {
    let storage = bindings.iter().filter(|b| **b != Binding::UniformDynamic).count() as u64;
    let uniforms = bindings.len() as u64 - storage;
    let mut wanted = vec![
        (
            storage,
            limits.max_storage_buffers_per_shader_stage as u64,
            "storage buffers per shader stage",
            "max_storage_buffers_per_shader_stage",
        ),
        (
            uniforms,
            limits.max_dynamic_uniform_buffers_per_pipeline_layout as u64,
            "dynamic uniform buffers",
            "max_dynamic_uniform_buffers_per_pipeline_layout",
        ),
        (
            bindings.len() as u64,
            limits.max_bindings_per_bind_group as u64,
            "bindings in one group",
            "max_bindings_per_bind_group",
        ),
    ];
    if let Some(n) = needs {
        let [x, y, z] = n.workgroup_size;
        wanted.extend([
            (
                x as u64,
                limits.max_compute_workgroup_size_x as u64,
                "invocations along x per workgroup",
                "max_compute_workgroup_size_x",
            ),
            (
                y as u64,
                limits.max_compute_workgroup_size_y as u64,
                "invocations along y per workgroup",
                "max_compute_workgroup_size_y",
            ),
            (
                z as u64,
                limits.max_compute_workgroup_size_z as u64,
                "invocations along z per workgroup",
                "max_compute_workgroup_size_z",
            ),
            (
                x as u64 * y as u64 * z as u64,
                limits.max_compute_invocations_per_workgroup as u64,
                "invocations per workgroup",
                "max_compute_invocations_per_workgroup",
            ),
            (
                n.workgroup_bytes,
                limits.max_compute_workgroup_storage_size as u64,
                "bytes of workgroup storage",
                "max_compute_workgroup_storage_size",
            ),
        ]);
    }
    match wanted.into_iter().find(|(need, have, _, _)| need > have) {
        Some((need, have, what, limit)) => Err(Error::invalid(
            "device limits",
            format!(
                "kernel {kernel} needs {need} {what}, but this device allows {have} ({limit}); a host's device made with \
                 lower limits than its adapter's (wgpu::Limits::default(), downlevel or WebGL2 limits) is too small: \
                 request the device with adapter.limits()"
            ),
        )),
        None => Ok(()),
    }
}
