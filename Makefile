# Each target does its own set-up (idempotent): a fresh Debian machine needs nothing else.
.PHONY: setup demo test bench bench-mqtt bench-analytics bench-alerts check-config clean

setup:
	./deploy/setup-debian.sh

demo: setup
	.venv/bin/plantems demo --config config/plant.demo.yaml

test: setup
	.venv/bin/ruff check plantems collector analytics simulator grafana bench tests
	.venv/bin/python -m pytest -q

bench: setup
	.venv/bin/python bench/bench_collector.py

bench-mqtt: setup
	.venv/bin/python bench/bench_mqtt.py --messages 30000

bench-analytics: setup
	.venv/bin/python bench/bench_analytics.py

bench-alerts: setup
	.venv/bin/python bench/bench_alerts.py --groups 20

check-config: setup
	.venv/bin/plantems check-config config/plant.demo.yaml

clean:
	rm -rf var reports .pytest_cache
