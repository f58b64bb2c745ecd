"""Every objective on grid25 with its paper defaults, 3 seeds each (one compiled program per objective).

The objectives differ in structure (loss, n_critic, optimizer, clipping), so each is its own group of 3
vmapped seeds; groups run one after another. Results in ``<workdir>/summary.md``.
"""

SWEEP = {
    "base": {"arch": "mlp", "dataset": "grid25", "steps": 5000},
    "list": [{"objective": name} for name in ("minimax", "nonsaturating", "lsgan", "hinge", "wgan",
                                              "wgan_gp", "ebgan", "rsgan", "ragan")],
    "seeds": [0, 1, 2],
}
