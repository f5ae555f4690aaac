"""Reproduce "Blackbox Model Provenance via Palimpsestic Membership Inference" (arXiv 2510.19796).

python reproduce/palimpsest.py                    # tiny scale: CPU, 3 seeds; writes results/palimpsest/tiny/
python reproduce/palimpsest.py --smoke --out /tmp/p   # the smoke config (the test suite runs it)
python reproduce/palimpsest.py --scale paper --device cuda   # needs the paper's weights and transcripts

Configs: reproduce/configs/palimpsest/{tiny,paper,smoke}.toml (`--config FILE` for another one).
"""

import sys

from reprokit.reproduce import main

if __name__ == "__main__":
    sys.exit(main("palimpsest"))
