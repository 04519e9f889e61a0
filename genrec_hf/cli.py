"""Console entry points (see `setup.cfg`); each imports its command lazily so `--help` stays fast."""


def prepare_data_main(argv: list[str] | None = None):
    from .data.cli import prepare_data_main as main

    return main(argv)


def train_main(argv: list[str] | None = None):
    from .training.cli import train_main as main

    return main(argv)


def precompute_main(argv: list[str] | None = None):
    from .inference.cli import precompute_main as main

    return main(argv)


def recommend_main(argv: list[str] | None = None):
    from .inference.cli import recommend_main as main

    return main(argv)


def push_to_hub_main(argv: list[str] | None = None):
    from .hub_cli import push_to_hub_main as main

    return main(argv)
