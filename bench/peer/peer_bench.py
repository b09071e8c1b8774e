"""Peer benchmark: the stayledger command workload on the Python library `eventsourcing` 9.x with its
SQLite persistence, so `stayledger-bench` can print the ratio of the two in one run.

Workload per flow (the same as stayledger's peer workload):
  request  -> a new Reservation aggregate (1 event)
  approve  -> the Lodging aggregate grants the stay if every night has a free room (1 event),
              then the Reservation records the approval (1 event)
  confirm  -> the Reservation is confirmed with a payment id (1 event)
Flows are spread over 64 lodgings so no one lodging's history dominates. Run sequentially and from
several threads. Prints one JSON object on stdout.
"""

import argparse
import datetime as dt
import json
import os
import tempfile
import threading
import time
import uuid

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

LODGINGS = 64


class Lodging(Aggregate):
    @event("Registered")
    def __init__(self, name: str, rooms: int):
        self.name = name
        self.rooms = rooms
        self.booked = {}

    @event("ApprovalGranted")
    def grant(self, reservation_id: str, nights: list):
        for night in nights:
            self.booked[night] = self.booked.get(night, 0) + 1

    def has_room(self, nights):
        return all(self.booked.get(night, 0) < self.rooms for night in nights)


class Reservation(Aggregate):
    @event("Requested")
    def __init__(self, customer_id: str, lodging_id: str, check_in: str, check_out: str, guests: int):
        self.customer_id = customer_id
        self.lodging_id = lodging_id
        self.check_in = check_in
        self.check_out = check_out
        self.guests = guests
        self.status = "requested"

    @event("Approved")
    def approve(self, approved_by: str):
        self.status = "approved"

    @event("Confirmed")
    def confirm(self, payment_id: str, amount: int):
        self.status = "confirmed"


def nights_of(check_in, check_out):
    start = dt.date.fromisoformat(check_in)
    end = dt.date.fromisoformat(check_out)
    return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days)]


class Reservations(Application):
    def register_lodging(self, name, rooms):
        lodging = Lodging(name, rooms)
        self.save(lodging)
        return lodging.id

    def request(self, customer_id, lodging_id, check_in, check_out, guests):
        reservation = Reservation(customer_id, str(lodging_id), check_in, check_out, guests)
        self.save(reservation)
        return reservation.id

    def approve(self, reservation_id, admin):
        reservation = self.repository.get(reservation_id)
        lodging = self.repository.get(uuid.UUID(reservation.lodging_id))
        nights = nights_of(reservation.check_in, reservation.check_out)
        if not lodging.has_room(nights):
            raise RuntimeError("no room")
        lodging.grant(str(reservation_id), nights)
        reservation.approve(admin)
        self.save(lodging, reservation)

    def confirm(self, reservation_id, payment_id, amount):
        reservation = self.repository.get(reservation_id)
        reservation.confirm(payment_id, amount)
        self.save(reservation)


def flow(app, lodging_id, i):
    day = dt.date(2030, 1, 1) + dt.timedelta(days=i % 300)
    check_in, check_out = day.isoformat(), (day + dt.timedelta(days=2)).isoformat()
    rid = app.request(f"customer-{i}", lodging_id, check_in, check_out, 2)
    app.approve(rid, "admin")
    app.confirm(rid, f"pay-{i}", 240000)


def run(flows, threads, db_path):
    os.environ["PERSISTENCE_MODULE"] = "eventsourcing.sqlite"
    os.environ["SQLITE_DBNAME"] = db_path
    os.environ["SQLITE_LOCK_TIMEOUT"] = "30"
    app = Reservations()
    lodgings = [app.register_lodging(f"lodging-{n}", 1_000_000) for n in range(LODGINGS)]
    locks = [threading.Lock() for _ in range(LODGINGS)]
    counter = iter(range(flows))
    counter_lock = threading.Lock()

    def worker():
        while True:
            with counter_lock:
                i = next(counter, None)
            if i is None:
                return
            with locks[i % LODGINGS]:  # the peer has no optimistic retry loop: serialise per lodging
                flow(app, lodgings[i % LODGINGS], i)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - started
    return {"flows": flows, "threads": threads, "seconds": seconds, "flows_per_sec": flows / seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flows", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    import eventsourcing

    version = getattr(eventsourcing, "__version__", None)
    if version is None:
        from importlib.metadata import version as pkg_version

        version = pkg_version("eventsourcing")
    results = {"library": "eventsourcing", "version": version, "persistence": "sqlite"}
    with tempfile.TemporaryDirectory() as tmp:
        results["sequential"] = run(args.flows, 1, os.path.join(tmp, "seq.sqlite"))
        results["concurrent"] = run(args.flows, args.threads, os.path.join(tmp, "conc.sqlite"))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
