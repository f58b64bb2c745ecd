"""Writes ``stylegan2_reference.npz``: outputs of NVIDIA's StyleGAN2 code for jaxgan's tests.

``tests/test_models_stylegan.py`` checks ``jaxgan.models.stylegan`` against these numbers: the resampling
convs (``conv2d_resample`` with up=2 / down=2) and a whole small Generator and Discriminator whose
weights are stored here in jaxgan's parameter layout. Needs torch and a checkout of
https://github.com/NVlabs/stylegan3 (``training/networks_stylegan2.py``) or
https://github.com/NVlabs/stylegan2-ada-pytorch (``training/networks.py``); their custom CUDA ops are not
needed (on CPU they run their reference PyTorch paths). Their code is not part of jaxgan.

    python tests/data/make_stylegan2_reference.py --reference_dir=/path/to/stylegan3

Layout conversions (torch -> jaxgan): dense [out, in] -> [in, out]; conv [O, I, kh, kw] -> [kh, kw, I, O];
the up-convs run as convolutions in the reference (``flip_weight=False``) and as correlations here, so
their kernels are flipped in space; D's epilogue dense reads a [C, H, W] flatten there, [H, W, C] here.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

RESOLUTION, WIDTH, W_DIM, MAPPING_LAYERS, CHANNELS = 16, 8, 16, 2, 1


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--reference_dir", required=True, help="a stylegan3 or stylegan2-ada-pytorch checkout")
  parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                    "stylegan2_reference.npz"))
  args = parser.parse_args()
  import torch
  sys.path.insert(0, args.reference_dir)
  try:
    from training.networks_stylegan2 import Discriminator, Generator
  except ImportError:
    from training.networks import Discriminator, Generator
  from torch_utils.ops import conv2d_resample, upfirdn2d

  torch.manual_seed(0)
  rs = np.random.RandomState(0)
  out: dict[str, np.ndarray] = {}
  # The resampling convs alone: x [N, C, H, W], w [O, I, 3, 3].
  f = upfirdn2d.setup_filter([1, 3, 3, 1])
  x = rs.randn(2, 3, 7, 7).astype(np.float32)
  w = rs.randn(5, 3, 3, 3).astype(np.float32)
  up = conv2d_resample.conv2d_resample(torch.from_numpy(x), torch.from_numpy(w), f=f, up=2, padding=1,
                                       flip_weight=False).numpy()
  out.update(up_x=x.transpose(0, 2, 3, 1), up_kernel=w.transpose(2, 3, 1, 0)[::-1, ::-1].copy(),
             up_y=up.transpose(0, 2, 3, 1))
  x = rs.randn(2, 3, 14, 14).astype(np.float32)
  down = conv2d_resample.conv2d_resample(torch.from_numpy(x), torch.from_numpy(w), f=f, down=2, padding=1,
                                         flip_weight=True).numpy()
  out.update(down_x=x.transpose(0, 2, 3, 1), down_kernel=w.transpose(2, 3, 1, 0),
             down_y=down.transpose(0, 2, 3, 1))

  # Whole networks, every layer with 8 channels; non-zero biases and noise strengths so they count.
  G = Generator(z_dim=W_DIM, c_dim=0, w_dim=W_DIM, img_resolution=RESOLUTION, img_channels=CHANNELS,
                mapping_kwargs=dict(num_layers=MAPPING_LAYERS), channel_base=32768, channel_max=WIDTH,
                num_fp16_res=0, conv_clamp=None, architecture="skip").eval()
  D = Discriminator(c_dim=0, img_resolution=RESOLUTION, img_channels=CHANNELS, architecture="resnet",
                    channel_base=32768, channel_max=WIDTH, num_fp16_res=0, conv_clamp=None,
                    epilogue_kwargs=dict(mbstd_group_size=4)).eval()
  with torch.no_grad():
    for name, p in list(G.named_parameters()) + list(D.named_parameters()):
      if (name.endswith("bias") and "affine" not in name) or name.endswith("noise_strength"):
        p.add_(0.1 * torch.randn_like(p))
  g = {n: p.detach().numpy() for n, p in G.named_parameters()}
  d = {n: p.detach().numpy() for n, p in D.named_parameters()}

  def dense(tree, name):
    return {"kernel": tree[name + ".weight"].T, "bias": tree[name + ".bias"]}

  def conv(tree, name, flip=False):
    k = tree[name + ".weight"].transpose(2, 3, 1, 0)
    return k[::-1, ::-1].copy() if flip else k

  def style_layer(name, up=False):
    return {"conv": {"affine": dense(g, name + ".affine"), "kernel": conv(g, name, flip=up)},
            "noise_strength": g[name + ".noise_strength"], "bias": g[name + ".bias"]}

  def torgb(name):
    return {"conv": {"affine": dense(g, name + ".affine"), "kernel": conv(g, name)},
            "bias": g[name + ".bias"]}

  resolutions = [4 * 2 ** i for i in range(1, int(np.log2(RESOLUTION // 4)) + 1)]
  synthesis = {"const": g["synthesis.b4.const"].transpose(1, 2, 0),
               "conv0": style_layer("synthesis.b4.conv1"),
               "torgb0": torgb("synthesis.b4.torgb")}
  for level, res in enumerate(resolutions, start=1):
    synthesis[f"conv{level}_up"] = style_layer(f"synthesis.b{res}.conv0", up=True)
    synthesis[f"conv{level}"] = style_layer(f"synthesis.b{res}.conv1")
    synthesis[f"torgb{level}"] = torgb(f"synthesis.b{res}.torgb")
  g_params = {"mapping": {f"fc{i}": dense(g, f"mapping.fc{i}") for i in range(MAPPING_LAYERS)},
              "synthesis": synthesis}
  d_params = {"fromrgb": {"kernel": conv(d, f"b{RESOLUTION}.fromrgb"),
                          "bias": d[f"b{RESOLUTION}.fromrgb.bias"]}}
  for level, res in enumerate(reversed(resolutions)):
    d_params[f"block{level}_conv0"] = {"kernel": conv(d, f"b{res}.conv0"), "bias": d[f"b{res}.conv0.bias"]}
    d_params[f"block{level}_conv1"] = {"kernel": conv(d, f"b{res}.conv1"), "bias": d[f"b{res}.conv1.bias"]}
    d_params[f"block{level}_skip"] = {"kernel": conv(d, f"b{res}.skip")}
  fc = d["b4.fc.weight"]
  d_params["epilogue_conv"] = {"kernel": conv(d, "b4.conv"), "bias": d["b4.conv.bias"]}
  fc_kernel = fc.reshape(-1, WIDTH, 4, 4).transpose(2, 3, 1, 0).reshape(-1, fc.shape[0])  # [C,H,W] -> [H,W,C]
  d_params["epilogue_fc"] = {"kernel": fc_kernel,
                             "bias": d["b4.fc.bias"]}
  d_params["out"] = dense(d, "b4.out")

  from flax.traverse_util import flatten_dict
  out.update({f"g_params/{k}": np.asarray(v, np.float32) for k, v in flatten_dict(g_params, sep="/").items()})
  out.update({f"d_params/{k}": np.asarray(v, np.float32) for k, v in flatten_dict(d_params, sep="/").items()})
  z = rs.randn(8, W_DIM).astype(np.float32)
  images = rs.randn(8, CHANNELS, RESOLUTION, RESOLUTION).astype(np.float32)
  with torch.no_grad():
    out["g_z"] = z
    out["g_images"] = G(torch.from_numpy(z), None, noise_mode="none").numpy().transpose(0, 2, 3, 1)
    out["d_images"] = images.transpose(0, 2, 3, 1)
    out["d_logits"] = D(torch.from_numpy(images), None).numpy()[:, 0]
  np.savez_compressed(args.out, **out)
  print(f"wrote {args.out}: {len(out)} arrays")


if __name__ == "__main__":
  main()
