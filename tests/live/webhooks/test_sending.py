"""The sender called directly (no Celery), against PostgreSQL and a real receiver: the lease
keeps two workers from sending one delivery at once; a send names the host it was given (Host
header, TLS server name and certificate) while it connects to the address that was checked."""
import dataclasses
import json
import ssl
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import text

from models.webhooks import DELIVERED, PENDING
from process_local import ProcessLocal
from settings import Settings
from tasks.runtime import WorkerRuntime
from webhooks.sending import SKIPPED


@pytest.fixture()
def runtime(stack_env, empty_tables):
    runtime = WorkerRuntime(Settings.from_env(stack_env["env"]))
    yield runtime
    runtime.db.dispose()


def _owed(engine, url: str) -> uuid.UUID:
    delivery_id = uuid.uuid4()
    with engine.begin() as connection:
        job_id = connection.execute(text(
            "INSERT INTO jobs (id, customer_id, status, source, attempts, cart_status, next_run_at)"
            " VALUES (gen_random_uuid(), 1, 'completed', 'body', 1, 'not_needed', now()) RETURNING id")).scalar()
        connection.execute(text(
            "INSERT INTO webhook_deliveries (id, job_id, event, url, payload)"
            " VALUES (:id, :job, 'job.completed', :url, CAST(:payload AS jsonb))"),
            {"id": delivery_id, "job": job_id, "url": url,
             "payload": json.dumps({"id": str(delivery_id), "type": "job.completed", "data": {}})})
    return delivery_id


def test_two_sends_of_one_delivery_at_once_post_it_once(runtime, engine, receiver):
    receiver.delay = 0.5  # the first send is still waiting for the receiver when the second starts
    # (within the stack's WEBHOOK_TIMEOUT_SECONDS of 1)
    delivery_id = _owed(engine, receiver.url)
    results = []
    senders = [threading.Thread(target=lambda: results.append(runtime.webhooks.send(delivery_id).status))
               for _ in range(2)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(10)

    assert sorted(results) == sorted([DELIVERED, SKIPPED])
    assert len(receiver.received) == 1
    assert runtime.webhooks.send(delivery_id).status == SKIPPED  # delivered: never sent again
    with engine.connect() as connection:
        attempts = connection.execute(text("SELECT count(*) FROM webhook_attempts WHERE delivery_id = :id"),
                                      {"id": delivery_id}).scalar()
    assert attempts == 1


def test_a_delivery_not_yet_due_is_left_for_its_own_wake_up(runtime, engine, receiver):
    delivery_id = _owed(engine, receiver.url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE webhook_deliveries SET next_attempt_at = now() + interval '1 hour'"
                                " WHERE id = :id"), {"id": delivery_id})

    assert runtime.webhooks.send(delivery_id).status == SKIPPED
    assert receiver.received == []


def _certificate(directory, name: str) -> tuple[str, str]:
    """A self-signed certificate for `name` and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(hours=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_a_callback_by_name_reaches_its_address_with_the_name_as_host(runtime, engine, receiver):
    url = receiver.url.replace("127.0.0.1", "localhost")  # allowed: the stack sets WEBHOOK_ALLOW_PRIVATE
    delivery_id = _owed(engine, url)

    assert runtime.webhooks.send(delivery_id).status == DELIVERED
    [request] = receiver.received
    assert request["headers"]["Host"] == url.split("/")[2]


@pytest.fixture()
def tls_receiver(tmp_path, make_receiver):
    """A receiver over TLS whose certificate names `localhost` only, and that certificate's file."""
    cert, key = _certificate(tmp_path, "localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return make_receiver(tls=context), cert


def test_over_tls_the_certificate_is_checked_against_the_name_not_the_address(runtime, engine, tls_receiver):
    receiver, cert = tls_receiver
    sender = dataclasses.replace(runtime.webhooks, http=ProcessLocal(lambda: urllib3.PoolManager(ca_certs=cert)))
    by_name, by_address = receiver.url.replace("127.0.0.1", "localhost"), receiver.url

    assert sender.send(_owed(engine, by_name)).status == DELIVERED
    refused = _owed(engine, by_address)  # the same server and address, but the certificate does not name it
    assert sender.send(refused).status == PENDING

    assert [request["headers"]["Host"] for request in receiver.received] == [by_name.split("/")[2]]
    with engine.connect() as connection:
        error = connection.execute(text("SELECT error FROM webhook_attempts WHERE delivery_id = :id"),
                                   {"id": refused}).scalar()
    assert error == "SSLError: hostname '127.0.0.1' doesn't match 'localhost'"
