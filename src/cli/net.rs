//! `ebm init-net`: a randomly initialised network of any architecture, as a safetensors file.

use crate::nn::{Architecture, Network, NetworkInternals};

#[derive(clap::Args, Debug)]
#[command(after_help = "Network text form (docs/networks.md): INPUT/LAYER/.../[head:H]\n  \
    INPUT   D (flat) or CxHxW (image)\n  \
    N       Linear to N outputs (N:nobias without bias)\n  \
    OCkK[sS][pP]  Conv2d to OC channels, kernel K, stride S (1), padding P (0); :nobias\n  \
    relu, leaky_relu[:a], silu|swish, tanh, softplus, elu[:a]   activations\n  \
    flatten, avgpool:K\n  \
    head:f (E = f), head:-f (E = -f), head:lse (E = -logsumexp f, JEM), head:class:Y (E = -f[Y])\n\n\
    Example, the UvA MNIST ConvEBM:\n  \
    ebm init-net 1x28x28/16k5s2p4/swish/32k3s2p1/swish/64k3s2p1/swish/64k3s2p1/swish/flatten/64/swish/1/head:-f --out uva.safetensors\n  \
    ebm sample --energy net:uva.safetensors --chains 64 --steps 60 --png samples.png")]
pub struct InitNetArgs {
    /// The architecture in the text form (see below), e.g. 2/128/silu/128/silu/1.
    pub spec: String,
    /// Parameters follow PyTorch's default initialisation, drawn from this seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output .safetensors file (tensors named as nn.Sequential names them, the architecture in
    /// the metadata), usable as `ebm sample --energy net:FILE`.
    #[arg(long)]
    pub out: std::path::PathBuf,
}

pub fn init_net(args: &InitNetArgs) -> anyhow::Result<()> {
    crate::cli::outputs::Paths::new().output("--out", &args.out, &["safetensors"])?;
    let arch = Architecture::parse(&args.spec)?;
    let net = Network::random(&arch, args.seed)?;
    net.save(&args.out)?;
    println!(
        "wrote {} ({} layers, {} parameters, input {}, {} outputs, {:.2} MFLOP per energy and gradient)",
        args.out.display(),
        net.layers.len(),
        net.param_count(),
        net.input,
        net.outputs,
        net.flops_per_energy_grad() as f64 * 1e-6
    );
    Ok(())
}
