"""The article's RabbitMQ side with pika: publish N persistent JSON messages with
publisher confirms, or consume them with acks (prefetch like the Rust worker's, ack after
the handler ran), on a queue of its own.

  python pika_bench.py publish QUEUE [COUNT]
  python pika_bench.py consume QUEUE [COUNT] [PREFETCH]
  python pika_bench.py delete QUEUE

Each phase prints one line on stderr, `cpu_s` being this process's CPU time:
  publish messages=N timed=N seconds=S rate=R cpu_s=C
  consume messages=N seconds=S rate=R cpu_s=C
The handler logs one line per message to stdout, which services.sh sends to /dev/null
like the Rust worker's. AMQP_URL names the broker.
"""
import json
import logging
import os
import resource
import sys
import time

import pika

URL = os.environ.get("AMQP_URL") or "amqp://guest:guest@127.0.0.1:5672/%2f"
log = logging.getLogger("email-worker")


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def publish(queue, count):
    conn = pika.BlockingConnection(pika.URLParameters(URL))
    channel = conn.channel()
    channel.queue_declare(queue=queue, durable=True)
    channel.confirm_delivery()
    props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
    body = json.dumps({"user_id": 1, "message": "Hello, World!"})
    # With confirms on, basic_publish returns once the broker confirmed the message and
    # raises on a nack or (mandatory) an unroutable message.
    channel.basic_publish("", queue, body, props, mandatory=True)  # out of the timing
    start = time.perf_counter()
    for _ in range(count - 1):
        channel.basic_publish("", queue, body, props, mandatory=True)
    seconds = time.perf_counter() - start
    conn.close()
    print(f"publish messages={count} timed={count - 1} seconds={seconds:.3f} rate={(count - 1) / seconds:.0f} cpu_s={cpu_seconds():.2f}", file=sys.stderr, flush=True)


def handle(msg):
    log.info("sending email user_id=%s message=%s", msg["user_id"], msg["message"])


def consume(queue, count, prefetch):
    # Timed from connecting, like the Rust worker, which is timed from its start.
    start = time.perf_counter()
    conn = pika.BlockingConnection(pika.URLParameters(URL))
    channel = conn.channel()
    channel.queue_declare(queue=queue, durable=True)
    channel.basic_qos(prefetch_count=prefetch)
    done = 0

    def on_message(ch, method, properties, body):
        nonlocal done
        handle(json.loads(body))
        ch.basic_ack(delivery_tag=method.delivery_tag)  # after the handler succeeded
        done += 1
        if done == count:
            ch.stop_consuming()

    channel.basic_consume(queue=queue, on_message_callback=on_message)
    channel.start_consuming()
    seconds = time.perf_counter() - start
    conn.close()
    print(f"consume messages={count} seconds={seconds:.3f} rate={count / seconds:.0f} cpu_s={cpu_seconds():.2f}", file=sys.stderr, flush=True)


def delete(queue):
    conn = pika.BlockingConnection(pika.URLParameters(URL))
    conn.channel().queue_delete(queue=queue)
    conn.close()


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("publish", "consume", "delete"):
        sys.exit(__doc__)
    phase, queue = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 50_000
    prefetch = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    # Logs like the worker's: one line per message, to stdout (sent to /dev/null).
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter('{"time":"%(asctime)s","level":"%(levelname)s","message":"%(message)s"}'))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    if phase == "publish":
        publish(queue, count)
    elif phase == "consume":
        consume(queue, count, prefetch)
    else:
        delete(queue)


if __name__ == "__main__":
    main()
