"""`python -m sandbox`: run every simulator on its fixed port until Ctrl-C."""
from __future__ import annotations

import argparse
import logging
import threading

from .runner import start_sandbox


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--callback-base", default="http://127.0.0.1:8000",
                        help="the hub's base URL, where simulators post callbacks")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sandbox = start_sandbox(callback_base=args.callback_base, fixed_ports=True)
    for name, sim in sandbox.simulators.items():
        print(f"{name:15} {sim.base_url}")
    print("export these to point the hub at the sandbox (credentials are the sandbox's own):")
    for var in sorted(k for k in sandbox.env() if k.endswith(("_URL", "_WSDL"))):
        print(f"  {var}={sandbox.env()[var]}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
