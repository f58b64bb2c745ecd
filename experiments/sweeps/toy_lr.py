"""Learning-rate grid for the toy MLP GAN on ring8: 3 x 3 learning rates x 3 seeds = 27 runs, one program.

Run: ``python launch.py --sweep=experiments/sweeps/toy_lr.py --workdir=runs/toy_lr`` (or
``jaxgan.sweep.run_sweep(path, workdir)``); results in ``runs/toy_lr/summary.md``.
"""

SWEEP = {
    "base": {"objective": "nonsaturating", "arch": "mlp", "dataset": "ring8", "steps": 5000,
             "batch_size": 256},
    "grid": {"lr_g": [1e-4, 3e-4, 1e-3], "lr_d": [1e-4, 3e-4, 1e-3]},
    "seeds": [0, 1, 2],
}
