"""Runs the Singer tap `tap-hubspot` (PyPI, 4.5.0) against a Canonry sandbox. Executed by the peer's own
virtualenv (benchmarks/.venv-peer), never by Canonry's: it imports nothing from Canonry.

    .venv-peer/bin/python benchmarks/peer_tap_hubspot.py BASE_URL TOKEN STATE_IN STATE_OUT STREAMS

Base-URL override: tap-hubspot has no base-URL setting (`BASE_URL = "https://api.hubapi.com"` is a
module constant), so this wrapper sets `tap_hubspot.BASE_URL` before running the tap's own `do_sync`.
Discovery: the tap's `--discover` loads every stream's schema, which needs HubSpot's legacy v1/v2
endpoints (companies, deals, engagements, campaigns …) that the sandbox does not serve; the wrapper builds
the catalog for the requested v3 streams only, with the tap's own `load_discovered_schema` (which reads
`/crm/v3/properties/contacts`) and selects every field, as `--discover` + "select all" would.
Records go to stdout as Singer messages (the caller sends them to /dev/null or counts them); the final
state (bookmarks) is written to STATE_OUT for the incremental run.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    base_url, token, state_in, state_out, streams = sys.argv[1:6]
    import singer
    import tap_hubspot
    from singer import metadata

    tap_hubspot.BASE_URL = base_url.rstrip("/")
    tap_hubspot.CONFIG.update({"api_key": token, "start_date": "2000-01-01T00:00:00Z",
                               "select_fields_by_default": True, "request_timeout": 300})
    wanted = streams.split(",")
    catalog = {"streams": []}
    for stream in tap_hubspot.STREAMS:
        if stream.tap_stream_id not in wanted:
            continue
        schema, mdata = tap_hubspot.load_discovered_schema(stream)
        mdata_map = metadata.to_map(mdata)
        mdata_map = metadata.write(mdata_map, (), "selected", True)
        for field in schema["properties"]:
            mdata_map = metadata.write(mdata_map, ("properties", field), "selected", True)
        catalog["streams"].append({"stream": stream.tap_stream_id, "tap_stream_id": stream.tap_stream_id,
                                   "schema": schema, "metadata": metadata.to_list(mdata_map)})
    state = json.loads(open(state_in).read()) if state_in != "-" else {}
    # Capture the tap's STATE messages to hand the bookmarks to the next (incremental) run.
    last_state: dict = {}
    original = singer.write_state

    def keep_state(value):
        nonlocal last_state
        last_state = json.loads(json.dumps(value))
        original(value)

    singer.write_state = keep_state
    tap_hubspot.singer.write_state = keep_state
    tap_hubspot.do_sync(state, catalog)
    with open(state_out, "w") as handle:
        json.dump(last_state, handle)


if __name__ == "__main__":
    main()
