"""Reproduce "SHA256 at SemEval-2025 Task 4: Selective Amnesia" (Agrawal and Huang, arXiv 2504.12996).

python reproduce/selective_amnesia.py                     # tiny scale (CPU): results/selective-amnesia/tiny/
python reproduce/selective_amnesia.py --smoke --out /tmp/s  # the smoke config (the test suite runs it)
python reproduce/selective_amnesia.py --scale paper --device cuda  # the task's gated OLMo models and data

Configs: reproduce/configs/selective-amnesia/{tiny,paper,smoke}.toml (`--config FILE` for another one).
"""

import sys

from reprokit.reproduce import main

if __name__ == "__main__":
    sys.exit(main("selective-amnesia"))
