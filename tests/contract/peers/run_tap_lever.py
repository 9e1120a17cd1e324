"""Runs Singer.io's `tap-lever` (PyPI) against a Lever sandbox. Imports nothing from Canonry.

    python run_tap_lever.py BASE_URL API_KEY START_DATE STREAMS  -> Singer messages on stdout

Base-URL override: tap-lever writes `https://api.lever.co/v1...` into each stream's URL (no setting), so
this wrapper rewrites that host to the sandbox's in the tap's one HTTP entry point,
`LeverClient.make_request`; nothing else of the tap changes. Catalog: what `--discover` gives (each
stream's `generate_catalog`), with the requested streams and all their fields selected, as "select all"
in a Singer UI would; then the tap's own `LeverRunner.do_sync`.
"""

import sys
from types import SimpleNamespace

from singer import metadata
from singer.catalog import Catalog
from tap_lever import LeverRunner
from tap_lever.client import LeverClient
from tap_lever.streams import AVAILABLE_STREAMS

LEVER_HOST = "https://api.lever.co"


def main() -> None:
    base_url, api_key, start_date, streams = sys.argv[1:5]
    original = LeverClient.make_request

    def make_request(self, url, method, params=None, body=None):
        return original(self, url.replace(LEVER_HOST, base_url.rstrip("/"), 1), method, params=params, body=body)

    LeverClient.make_request = make_request
    config = {"token": api_key, "start_date": start_date}
    wanted = set(streams.split(","))
    entries = []
    for stream_class in AVAILABLE_STREAMS:
        for entry in stream_class(config, {}, None, None).generate_catalog():
            if entry["stream"] not in wanted:
                continue
            mdata = metadata.to_map(entry["metadata"])
            mdata = metadata.write(mdata, (), "selected", True)
            for field in entry["schema"]["properties"]:
                mdata = metadata.write(mdata, ("properties", field), "selected", True)
            entry["metadata"] = metadata.to_list(mdata)
            entries.append(entry)
    args = SimpleNamespace(config=config, state={}, catalog=Catalog.from_dict({"streams": entries}))
    LeverRunner(args, LeverClient(config), AVAILABLE_STREAMS).do_sync()


if __name__ == "__main__":
    main()
