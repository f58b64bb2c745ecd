"""R1 strength (Mescheder et al. 2018) on grid25, 0 (off) to 10, 3 seeds: 12 runs in one program.

gamma = 0 shares the program of the others (the penalty is computed and weighted by 0).
"""

SWEEP = {
    "base": {"objective": "nonsaturating", "arch": "mlp", "dataset": "grid25", "steps": 5000},
    "grid": {"r1_gamma": [0.0, 0.1, 1.0, 10.0]},
    "seeds": [0, 1, 2],
}
