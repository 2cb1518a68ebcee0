"""The ``plantems`` command: the composition root, the one module that wires
collector, simulator (and later analytics and grafana) together."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from plantems import redact
from plantems.config import InfluxApi, PlantConfig, Role, load_plant
from plantems.group import Group
from plantems.i18n import ALL_LANGS, Lang, Named, parse_langs
from plantems.influx import InfluxClient, InfluxError, detect_api, init_databases, make_writer
from plantems.reference import reference_path
from plantems.yamlconf import ConfigError

if TYPE_CHECKING:
    from plantems.analytics.inventory import Inventory

__all__ = ["main"]

log = logging.getLogger("plantems")

CONFIG_OPTION = click.option("--config", "config_path", type=click.Path(path_type=Path), default=Path(
    "config/plant.demo.yaml"), show_default=True, help="Plant configuration file.")


def _load(path: Path, role: Role | None = None) -> PlantConfig:
    """The plant file, logged in to InfluxDB as ``role`` where influxdb.users has it."""
    try:
        plant = load_plant(path)
        if role:
            plant = plant.model_copy(update={"influxdb": plant.influxdb.as_role(role)})
        for secret in (plant.influxdb.password, plant.influxdb.token):
            if secret is not None:
                secret.resolve()  # a missing variable or file refuses to start, naming where it looked
        return plant
    except ConfigError as exc:
        click.echo(f"configuration refused ({len(exc.problems)} problem(s)):", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(2)


@click.group()
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def main(log_level: str) -> None:
    """plantems: energy-management monitoring for heavy industry."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact.install()  # secrets, credential query parameters and URL logins become *** in every record


def _load_group(path: Path, role: Role | None = None) -> Group:
    """The group file with every site's plant file and ledger; each site logged in as ``role``."""
    from plantems.group import load_group

    try:
        group = load_group(path)
    except ConfigError as exc:
        click.echo(f"group configuration refused ({len(exc.problems)} problem(s)):", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(2)
    return group.with_plants(tuple(_load(p.source_path or path, role) for p in group.plants))


@main.command("check-config")
@click.argument("config_path", type=click.Path(path_type=Path))
@click.option("--group", "is_group", is_flag=True, help="CONFIG_PATH is a group file (detected by its group: key).")
def check_config(config_path: Path, is_group: bool) -> None:
    """Validate CONFIG_PATH (a plant or group file) and print each device's planned Modbus reads."""
    from plantems.group import is_group_file

    if is_group or is_group_file(config_path):
        group = _load_group(config_path)
        click.echo(f"{config_path}: OK: group {group.id}, {len(group.plants)} sites, {len(group.ledger)} ledger rows")
        for plant in group.plants:
            click.echo(f"  site {plant.site.id} ({plant.site.timezone}): {plant.source_path}, output lines "
                       f"{list(group.output_lines[plant.site.id])}, factor regions "
                       f"{list(plant.site.grid_factor_regions)}")
        return
    _check_plant(config_path)


def _check_plant(config_path: Path) -> None:
    from plantems.collector.modbus.client import READ_FUNCTION_CODES
    from plantems.collector.modbus.decode import compile_plan

    plant = _load(config_path)
    metal = _check_metal_ledger(config_path.parent)
    measures = _check_measures(plant, config_path.parent)
    click.echo(f"{config_path}: OK: site {plant.site.id} ({plant.site.timezone}), {len(plant.devices)} devices, "
               f"{len(plant.meters)} meter models")
    for device in plant.modbus_devices:
        model = plant.meter_of(device)
        fill = model.max_gap_fill if device.max_gap_fill is None else device.max_gap_fill
        plan = compile_plan(model, max_gap_fill=fill)
        gateway = plant.gateway_of(device)
        reads = ", ".join(f"FC{READ_FUNCTION_CODES[r.register_type]} {r.address}+{r.count}"
                          for r in (*plan.multiplier_reads, *plan.reads))
        click.echo(f"  {device.id:<12} {device.meter:<18} {gateway.endpoint} unit {device.unit_id} "
                   f"every {device.poll_interval_s:g} s: {len(plan.reads)} reads/poll [{reads}]")
    for device in plant.mqtt_devices:
        mapping = plant.mapping_of(device)
        topic = mapping.subscription(site=plant.site.id, device=device.mqtt.topic_id or device.id)
        click.echo(f"  {device.id:<12} mqtt {mapping.id:<13} {topic} ({mapping.format}): "
                   f"{', '.join(sorted(plant.quantities_of(device)))}")
    if metal is not None:
        click.echo(f"  metal ledger {metal[0]}: {metal[1]} deliveries")
    if measures is not None:
        click.echo(f"  measures register {measures[0]}: {measures[1]}")


def _refuse(what: str, problems: Sequence[str]) -> NoReturn:
    """Exit 2 listing every problem of ``what`` (a configuration, a register, a ledger), one per line."""
    click.echo(f"{what} refused:\n  " + "\n  ".join(problems), err=True)
    sys.exit(2)


def _check_measures(plant: PlantConfig, folder: Path) -> tuple[Path, str] | None:
    """The measures register beside a plant file, if any: one of this site that is wrong refuses the
    command (exit 2), at start rather than on the quarter's first day; another site's is named as such."""
    from plantems.measures import REGISTER_FILE, PlantNames, site_register

    path = folder / REGISTER_FILE
    if not path.exists():
        return None
    try:
        register = site_register(folder, plant.site.id, PlantNames.of(plant))
    except ConfigError as exc:
        _refuse("measures register", exc.problems)
    if register is None:
        return path, "another site's register (its site: key), left alone"
    return path, f"{len(register.measures)} measures, {len(register.predictors)} predictor series"


def _check_metal_ledger(folder: Path) -> tuple[Path, int] | None:
    """The purchased-metal ledger beside a plant file (the monthly report's Scope 3 section reads it), if any:
    a bad row refuses the command with its file:line (exit 2), as the rollup would refuse the month."""
    from plantems.metal import load_metal_ledger

    path = folder / "metal_purchases.csv"
    if not path.exists():
        return None
    try:
        return path, len(load_metal_ledger(path))
    except ConfigError as exc:
        _refuse("metal ledger", exc.problems)


@main.command()
@CONFIG_OPTION
@click.option("--shard", default="0/1", show_default=True, help="Run only shard i of n (devices split by connection).")
def collect(config_path: Path, shard: str) -> None:
    """Poll the plant's meters into InfluxDB through the durable spool (until Ctrl-C)."""
    from plantems.collector.service import Shard, run_collector

    plant = _load(config_path, "collector")
    try:
        parsed = Shard.parse(shard)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--shard") from None
    asyncio.run(run_collector(plant, shard=parsed))


@main.group()
def influx() -> None:
    """InfluxDB administration."""


@influx.command("init")
@CONFIG_OPTION
def influx_init(config_path: Path) -> None:
    """Create the raw and derived databases, retention policies and role users (idempotent).

    With influxdb.users configured, runs as the admin in PLANTEMS_INFLUX_ADMIN_USER /
    PLANTEMS_INFLUX_ADMIN_PASSWORD.
    """
    import os

    from plantems.influx import init_users
    from plantems.secret import Secret

    plant = _load(config_path)
    cfg = plant.influxdb
    admin_user = os.environ.get("PLANTEMS_INFLUX_ADMIN_USER")
    if admin_user:  # databases, retention policies and users need an admin login
        cfg = cfg.model_copy(update={"username": admin_user, "token": None,
                                     "password": Secret(env="PLANTEMS_INFLUX_ADMIN_PASSWORD")})
    elif plant.influxdb.users:
        click.echo("influxdb.users are configured: set PLANTEMS_INFLUX_ADMIN_USER and PLANTEMS_INFLUX_ADMIN_PASSWORD "
                   "so init can create them", err=True)
        sys.exit(2)
    try:
        if (cfg.api if cfg.api is not InfluxApi.AUTO else detect_api(cfg)) is InfluxApi.V2:
            from plantems.influx import init_buckets_v2

            for line in init_buckets_v2(cfg):
                click.echo(line)
            return
        for line in init_databases(cfg):
            click.echo(line, err=line.startswith("WARNING"))
        if plant.influxdb.users:
            for line in init_users(plant.influxdb, cfg):
                click.echo(line)
    except ConfigError as exc:
        click.echo("influx init: " + "; ".join(exc.problems), err=True)
        sys.exit(2)
    except InfluxError as exc:
        click.echo(f"influx init failed: {exc}", err=True)
        sys.exit(1)


@main.command()
@CONFIG_OPTION
@click.option("--backfill", "backfill_days", type=float, default=None,
              help="Write this many days of history into InfluxDB, then exit.")
@click.option("--scenario", "extra_scenarios", multiple=True, metavar="NAME[@START][/MIN]",
              help="Add a scenario to the plant file's simulator.scenarios, e.g. mills-peak@+30 (in 30 s).")
def simulate(config_path: Path, backfill_days: float | None, extra_scenarios: tuple[str, ...]) -> None:
    """Serve the plant's meters as Modbus TCP servers on loopback (or back-fill history)."""
    from plantems.simulator.economy import economy_for
    from plantems.simulator.run import Simulator, backfill
    from plantems.simulator.scenarios import check_devices, scenarios_for

    plant = _load(config_path, "collector")  # the back-fill writes raw points, as the collector does
    _check_measures(plant, config_path.parent)
    economy = economy_for(plant, config_path.parent)  # daily production and measures (measures.yaml beside)
    try:
        scenarios = scenarios_for(plant.simulator.scenarios, extra_scenarios)
        check_devices(scenarios, [d.id for d in plant.modbus_devices])
    except ValueError as exc:
        click.echo(f"{config_path}: simulator: {exc}", err=True)
        sys.exit(2)
    if backfill_days is not None:
        cfg = plant.influxdb
        try:
            writer = make_writer(cfg, detect_api(cfg))
            count = backfill(plant, writer, days=backfill_days, batch_lines=cfg.batch_lines, scenarios=scenarios,
                             economy=economy)
        except InfluxError as exc:
            click.echo(f"back-fill failed: {exc}", err=True)
            sys.exit(1)
        click.echo(f"back-filled {count} points ({backfill_days:g} days) into {cfg.raw_database}")
        return

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if scenarios:
            log.info("scenarios: %s", ", ".join(plant.simulator.scenarios + extra_scenarios))
        await Simulator(plant, scenarios=scenarios, economy=economy).run(stop)

    asyncio.run(serve())


@main.command()
@CONFIG_OPTION
@click.option("--tariffs", "tariffs_dir", type=click.Path(path_type=Path), default=None,
              help="Tariff folder (default: tariffs/ beside the plant file).")
@click.option("--backfill", nargs=2, type=click.DateTime(["%Y-%m-%d"]), default=None, metavar="FROM TO",
              help="Recompute every local day FROM..TO (inclusive): energy, EnPIs and the dashboard tiers, "
                   "with progress, then exit.")
@click.option("--reports", "reports_dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="Where the scheduled monthly rollup writes MONTH/ (one directory per site on a shared host).")
def analyze(config_path: Path, tariffs_dir: Path | None, backfill: tuple[datetime, datetime] | None,
            reports_dir: Path) -> None:
    """Run the analytics jobs on their schedules (until Ctrl-C), or back-fill a date range."""
    from plantems.analytics.enpi_job import backfill_enpi
    from plantems.analytics.service import backfill_energy, run_scheduler
    from plantems.analytics.tiers_job import backfill_tiers, tier_range
    from plantems.tariffs import load_tariffs

    plant = _load(config_path, "analytics")
    try:
        tariffs = load_tariffs(tariffs_dir or reference_path(config_path.parent, "tariffs"))
    except ConfigError as exc:
        _refuse("tariffs", exc.problems)
    if not tariffs:
        click.echo(f"no tariff in {tariffs_dir or config_path.parent / 'tariffs'}", err=True)
        sys.exit(2)
    _check_metal_ledger(config_path.parent)  # refused at start, not at the month's end
    _check_measures(plant, config_path.parent)  # nor on the quarter's first day
    cfg = plant.influxdb
    client, writer = InfluxClient(cfg), make_writer(cfg, detect_api(cfg))
    if backfill is not None:
        first, last = (d.date() for d in backfill)
        if last < first:
            raise click.BadParameter(f"{last} is before {first}", param_hint="--backfill")
        count = backfill_energy(plant, tariffs, client, writer, first, last)
        click.echo(f"energy_15m: {count} points for {first} .. {last}")
        tier_start, tier_end = tier_range(plant, first, last)
        if tier_end > tier_start:  # days in the future have no tiers yet
            tiers = backfill_tiers(plant, client, writer, tier_start, tier_end)
            click.echo(f"dashboard tiers: {tiers} points for {first} .. {last}")
        try:  # then the days' EnPIs, from the energy just written and the production imported so far
            enpis = backfill_enpi(plant, client, writer, first, last, config_dir=config_path.parent,
                                  as_of=datetime.now(plant.site.tz).date())
        except (ConfigError, LookupError) as exc:
            click.echo(f"enpi: not written: {exc}", err=True)
            sys.exit(1)
        click.echo(f"enpi: {enpis} points for {first} .. {last}")
        return
    monitor = None
    if plant.demand is not None:
        from plantems.analytics.demand_job import DemandMonitor
        from plantems.analytics.notify.roster import Roster

        try:
            monitor = DemandMonitor(plant, client, writer, Roster(plant))
        except ConfigError as exc:
            _refuse("alert channels", exc.problems)
    run_scheduler(plant, tariffs, client, writer, config_dir=config_path.parent, reports_dir=reports_dir,
                  monitor=monitor)


LANG_OPTION = click.option("--lang", "langs", type=click.Choice([lang.value for lang in ALL_LANGS]), multiple=True,
                           help="Report language (repeatable): zh writes report.zh.html and the .zh.xlsx, en "
                           "report.html and the .xlsx. Default: both.")


@main.command()
@CONFIG_OPTION
@click.option("--quarter", "quarter_id", required=True, help="YYYYQn, e.g. 2026Q4 (a running one: to yesterday).")
@click.option("--reports", "reports_dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@LANG_OPTION
def quarter(config_path: Path, quarter_id: str, reports_dir: Path, langs: tuple[str, ...]) -> None:
    """Quarterly report for the carbon committee: EnPIs against baseline and target, each measure's claimed
    against verified savings (measures.yaml), pathway status, data completeness: reports/quarter/QUARTER/
    (report.zh.html and quarter.zh.xlsx in Chinese, report.html and quarter.xlsx in English)."""
    from plantems.analytics.quarter import quarter_bounds
    from plantems.analytics.quarter_job import run_quarter

    plant = _load(config_path, "analytics")
    try:
        quarter_bounds(quarter_id)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--quarter") from None
    try:
        paths = run_quarter(plant, quarter_id.upper(), config_dir=config_path.parent,
                            client=InfluxClient(plant.influxdb), out_root=reports_dir / "quarter",
                            as_of=datetime.now(plant.site.tz).date(), langs=parse_langs(langs))
    except ConfigError as exc:
        _refuse("configuration", exc.problems)
    except (InfluxError, LookupError, ValueError) as exc:
        click.echo(f"quarter {quarter_id} failed: {exc}", err=True)
        sys.exit(1)
    for path in paths:
        click.echo(str(path))


@main.command()
@CONFIG_OPTION
@click.option("--month", default=None, help="YYYY-MM, in the site's calendar.")
@LANG_OPTION
@click.option("--restate", is_flag=True, help="Re-run reported months whose provisional factor now has a successor.")
@click.option("--reports", "reports_dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@click.option("--verify", is_flag=True, help="Only check that every meter's 15-minute energy adds up to its counter "
              "difference over MONTH; exit status 1 if any meter differs.")
def rollup(config_path: Path, month: str | None, langs: tuple[str, ...], restate: bool, reports_dir: Path,
           verify: bool) -> None:
    """Monthly rollup for MONTH: recompute its energy, write scope2 points and reports/MONTH/."""
    from plantems.analytics.service import restate_provisional, run_rollup

    plant = _load(config_path, "analytics")
    if (month is None) == (not restate):
        raise click.UsageError("give --month YYYY-MM or --restate")
    if verify and month is None:
        raise click.UsageError("--verify needs --month YYYY-MM")
    if month is not None:
        try:
            datetime.strptime(month, "%Y-%m")
        except ValueError:
            raise click.BadParameter(f"{month!r} is not YYYY-MM", param_hint="--month") from None
    cfg = plant.influxdb
    try:
        client, writer = InfluxClient(cfg), make_writer(cfg, detect_api(cfg))
        today = datetime.now(plant.site.tz).date()
        if verify and month is not None:
            _verify_month(plant, client, month)
            return
        if month is None:
            months = restate_provisional(plant, config_dir=config_path.parent, client=client, writer=writer,
                                         reports_dir=reports_dir, as_of=today)
            click.echo(f"restated: {', '.join(months) or 'nothing (no provisional month has a newer factor)'}")
            return
        paths = run_rollup(plant, month, config_dir=config_path.parent, client=client, writer=writer,
                           out_root=reports_dir, as_of=today, langs=parse_langs(langs))
    except ConfigError as exc:
        _refuse("configuration", exc.problems)
    except (InfluxError, LookupError) as exc:
        click.echo(f"rollup {month} failed: {exc}", err=True)
        sys.exit(1)
    for path in paths:
        click.echo(str(path))


def _verify_month(plant: PlantConfig, client: InfluxClient, month: str) -> None:
    """Print the month's reconciliation table; exit 1 if any meter differs."""
    from tqdm import tqdm

    from plantems.analytics.reconcile import RECONCILIATION_HEADER, read_reconciliation, reconciliation_table

    result = read_reconciliation(client, plant, month, progress=lambda devices: tqdm(
        devices, desc=f"reconcile {month}", unit="meter", disable=len(devices) < 20, file=sys.stderr))
    if not result.meters:
        click.echo(f"{month}: no meter has counter readings or 15-minute energy in this month: nothing to "
                   f"reconcile (wrong month, or its raw data has expired)", err=True)
        sys.exit(1)
    rows = [RECONCILIATION_HEADER, *reconciliation_table(result)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(RECONCILIATION_HEADER))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                             enumerate(zip(row, widths, strict=True))))
    if not result.ok:
        click.echo(f"{month}: {len(result.differing)} meter(s) do not reconcile: "
                   + ", ".join(m.device for m in result.differing), err=True)
        sys.exit(1)
    click.echo(f"{month}: every meter reconciles")


@main.group("group")
def group_cmd() -> None:
    """The group: several sites' monthly rollups consolidated (a group file lists the plant files)."""


GROUP_OPTION = click.option("--group", "group_path", type=click.Path(path_type=Path),
                            default=Path("config/group.demo.yaml"), show_default=True, help="Group file.")
REPORTS_OPTION = click.option("--reports", "reports_dir", type=click.Path(path_type=Path), default=Path("reports"),
                              show_default=True, help="Sites' reports go to REPORTS/SITE/MONTH, the group's to "
                              "REPORTS/GROUP/MONTH.")


@group_cmd.command("rollup")
@GROUP_OPTION
@click.option("--month", required=True, help="YYYY-MM, in each site's calendar.")
@REPORTS_OPTION
@LANG_OPTION
def group_rollup(group_path: Path, month: str, reports_dir: Path, langs: tuple[str, ...]) -> None:
    """Every site's monthly rollup for MONTH from its own InfluxDB, then the group's consolidated report."""
    from plantems.analytics.group import GroupError
    from plantems.analytics.group_job import run_group_rollup

    try:
        datetime.strptime(month, "%Y-%m")
    except ValueError:
        raise click.BadParameter(f"{month!r} is not YYYY-MM", param_hint="--month") from None
    group = _load_group(group_path, "analytics")
    try:
        _, paths = run_group_rollup(group, month, reports_dir=reports_dir,
                                    as_of=datetime.now(group.plants[0].site.tz).date(), langs=parse_langs(langs))
    except ConfigError as exc:
        _refuse("configuration", exc.problems)
    except (InfluxError, LookupError, GroupError) as exc:
        click.echo(f"group rollup {month} failed: {exc}", err=True)
        sys.exit(1)
    for path in paths:
        click.echo(str(path))


@group_cmd.command("analyze")
@GROUP_OPTION
@REPORTS_OPTION
def group_analyze(group_path: Path, reports_dir: Path) -> None:
    """Run the group rollup on its schedule (the 1st, 03:00, after the sites' own rollups) until Ctrl-C."""
    from plantems.analytics.group_job import run_group_scheduler

    run_group_scheduler(_load_group(group_path, "analytics"), reports_dir=reports_dir)


@main.command()
@click.option("--year", required=True, type=click.IntRange(2000, 2100), help="Calendar year of the inventory.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Plant file: the inventory of its site (rollups in REPORTS/MONTH/).")
@click.option("--group", "group_path", type=click.Path(path_type=Path), default=None,
              help="Group file: the inventory of its sites (rollups in REPORTS/SITE/MONTH/).")
@click.option("--reports", "reports_dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="Where the monthly rollups are; the inventory goes to REPORTS/inventory-YEAR/ (a site) or "
              "REPORTS/GROUP/inventory-YEAR/ (a group).")
@click.option("--run-missing", is_flag=True, help="Roll up each ended month without a rollup.json first (from the "
              "site's InfluxDB); without it such months are listed as missing.")
@click.option("--metal", "metal_path", type=click.Path(path_type=Path), default=None,
              help="Purchased-metal ledger (Scope 3 cat. 1); default: metal_purchases.csv beside the plant or group "
              "file; without one, Scope 3 is reported as not reported.")
@click.option("--base", "base_path", type=click.Path(path_type=Path), default=None,
              help="Base-year file; default: inventory_base.yaml beside the plant or group file, else the shipped one.")
@click.option("--gas-lhv", "gas_lhv", type=float, default=None,
              help="Natural gas lower heating value, kJ/m3 (supplier's figure) for tce; default GB/T 2589 Annex A.")
@LANG_OPTION
def inventory(year: int, config_path: Path | None, group_path: Path | None, reports_dir: Path, run_missing: bool,
              metal_path: Path | None, base_path: Path | None, gas_lhv: float | None, langs: tuple[str, ...]) -> None:
    """The annual greenhouse-gas inventory of a site or the group: JSON, CSV and XLSX, and the HTML report
    (report.zh.html, report.html) in REPORTS/.../inventory-YEAR/."""
    from plantems.analytics.inventory import InventoryError, compute_inventory
    from plantems.analytics.inventory_job import RollupSource, coal_coefficients, read_rollups
    from plantems.calendar import previous_month
    from plantems.inventory_base import load_inventory_base
    from plantems.ledger import load_ledger
    from plantems.metal import load_metal_ledger
    from plantems.targets import load_targets

    if (config_path is None) == (group_path is None):
        raise click.UsageError("give --config PLANT or --group GROUP")
    try:
        coefficients = coal_coefficients(gas_lhv)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--gas-lhv") from None
    try:
        if group_path is not None:
            group = _load_group(group_path, "analytics")
            plants, base_dir, boundary = group.plants, group_path.parent, group.id
            name, out_dir, green, targets = group.config.group.name, reports_dir / group.id, group.ledger, group.targets
            sources = [RollupSource(p.site.id, reports_dir / p.site.id, _group_month_runner(group, p, reports_dir)
                                    if run_missing else None) for p in group.plants]
        else:
            assert config_path is not None
            plant = _load(config_path, "analytics")
            plants, base_dir, boundary = (plant,), config_path.parent, plant.site.id
            name, out_dir = plant.site.name, reports_dir
            targets = load_targets(reference_path(base_dir, "targets.yaml"))
            ledger_path = base_dir / "green_power.csv"
            green = tuple(load_ledger(ledger_path)) if ledger_path.exists() else ()
            sources = [RollupSource(plant.site.id, reports_dir, _site_month_runner(plant, config_path, reports_dir)
                                    if run_missing else None)]
        metal_file = metal_path if metal_path is not None else base_dir / "metal_purchases.csv"
        metal = load_metal_ledger(metal_file) if metal_path is not None or metal_file.exists() else None
        base = load_inventory_base(base_path if base_path is not None else reference_path(base_dir,
                                                                                          "inventory_base.yaml"))
        now = {p.site.id: datetime.now(p.site.tz) for p in plants}
        docs = read_rollups(sources, year, last_ended={s: previous_month(t) for s, t in now.items()})
        result = compute_inventory(boundary=boundary, name=name, year=year, sites=[p.site.id for p in plants],
                                   as_of=now[plants[0].site.id].date(), docs=docs, green_ledger=green, metal=metal,
                                   coefficients=coefficients, base=base, targets=targets)
    except ConfigError as exc:
        _refuse("configuration", exc.problems)
    except (InfluxError, LookupError, InventoryError) as exc:
        click.echo(f"inventory {year} failed: {exc}", err=True)
        sys.exit(1)
    for path in _inventory_files(result, out_dir / f"inventory-{year}", parse_langs(langs), plants,
                                 group if group_path is not None else None):
        click.echo(str(path))
    if result.missing:
        click.echo(f"inventory {year} INCOMPLETE: {len(result.missing)} month(s) without a rollup: "
                   + ", ".join(f"{site} {month}" for site, month in result.missing), err=True)
        sys.exit(3)


def _inventory_files(result: Inventory, folder: Path, langs: tuple[Lang, ...], plants: Sequence[PlantConfig],
                     group: Group | None) -> list[Path]:
    """inventory.json/csv/xlsx and the HTML report in ``langs`` (sites, and the group, by their Chinese names)."""
    from plantems.analytics.group_sections import SiteName
    from plantems.analytics.inventory_html import write_inventory_html
    from plantems.analytics.inventory_report import write_inventory

    names: dict[str, Named] = {p.site.id: p.site for p in plants}
    if group is not None:
        info = group.config.group
        names[info.id] = SiteName(info.id, info.name, info.name_zh)
    return [*write_inventory(result, folder, zh=Lang.ZH in langs),
            *write_inventory_html(result, folder, langs=langs, names=names)]


def _site_month_runner(plant: PlantConfig, config_path: Path, reports_dir: Path) -> Callable[[str], None]:
    def run(month: str) -> None:
        from plantems.analytics.service import run_rollup

        cfg = plant.influxdb
        writer = make_writer(cfg, detect_api(cfg))
        try:
            run_rollup(plant, month, config_dir=config_path.parent, client=InfluxClient(cfg), writer=writer,
                       out_root=reports_dir, as_of=datetime.now(plant.site.tz).date(), progress=False)
        finally:
            writer.close()
    return run


def _group_month_runner(group: Group, plant: PlantConfig, reports_dir: Path) -> Callable[[str], None]:
    def run(month: str) -> None:
        from plantems.analytics.group_job import _site_rollup

        _site_rollup(plant, group, month, reports_dir, datetime.now(plant.site.tz).date(), False)
    return run


@main.group()
def production() -> None:
    """Production tonnage (for intensity per tonne)."""


@production.command("import")
@CONFIG_OPTION
@click.argument("csv_path", type=click.Path(exists=True, path_type=Path))
def production_import(config_path: Path, csv_path: Path) -> None:
    """Import CSV_PATH (columns: date, line, output_t) as `production` points at local midnight."""
    from plantems.production import read_production_csv

    plant = _load(config_path, "collector")  # production rows are raw points
    try:
        lines = read_production_csv(csv_path, plant)
    except ValueError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    cfg = plant.influxdb
    make_writer(cfg, detect_api(cfg)).write(cfg.raw_database, lines)
    click.echo(f"imported {len(lines)} production rows from {csv_path}")


@main.group()
def grafana() -> None:
    """Grafana dashboards and datasources generated from the plant configuration."""


def _reference(config_path: Path) -> tuple[list, list]:
    from plantems.factors import load_factors
    from plantems.tariffs import load_tariffs

    try:
        config_dir = config_path.parent
        return (load_tariffs(reference_path(config_dir, "tariffs")),
                load_factors(reference_path(config_dir, "emission_factors.yaml")))
    except ConfigError as exc:
        _refuse("reference data", exc.problems)


SITES_OPTION = click.option(
    "--config", "config_paths", type=click.Path(path_type=Path), multiple=True, show_default=True,
    default=(Path("config/plant.demo.yaml"), Path("config/plant.changde.yaml")),
    help="A site's plant file, once per site: one dashboard set with a site variable (datasources: the first's).")


def _build_dashboards(config_paths: tuple[Path, ...]) -> dict:
    from plantems.grafana.dashboards import build_dashboards

    try:
        return build_dashboards([_load(path) for path in config_paths], *_reference(config_paths[0]))
    except ValueError as exc:
        click.echo(f"dashboards refused: {exc}", err=True)
        sys.exit(2)


@grafana.command("build")
@SITES_OPTION
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("grafana"), show_default=True)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a committed file differs from the generated one.")
def grafana_build(config_paths: tuple[Path, ...], out_dir: Path, check: bool) -> None:
    """Generate the dashboards and provisioning files into OUT (grafana/dashboards, grafana/provisioning)."""
    from plantems.grafana.build import drift, render, write

    try:
        files = render([_load(path) for path in config_paths], *_reference(config_paths[0]))
    except ValueError as exc:
        click.echo(f"dashboards refused: {exc}", err=True)
        sys.exit(2)
    if check:
        stale = drift(out_dir, files)
        sources = " ".join(str(path) for path in config_paths)
        for relative in stale:
            click.echo(f"{out_dir / relative}: differs from what {sources} generates; run plantems grafana build",
                       err=True)
        sys.exit(1 if stale else 0)
    for path in write(out_dir, files):
        click.echo(str(path))


@grafana.command("publish")
@SITES_OPTION
@click.option("--url", envvar="PLANTEMS_GRAFANA_URL", default="http://127.0.0.1:3000", show_default=True,
              help="Grafana's root URL (env PLANTEMS_GRAFANA_URL).")
@click.option("--influx-url", default=None, help="InfluxDB as Grafana reaches it (default: the plant file's url).")
@click.option("--influx-api", type=click.Choice(["v1", "v2"]), default=None,
              help="InfluxDB API for the datasources (default: the plant file's; `auto` asks InfluxDB).")
def grafana_publish(config_paths: tuple[Path, ...], url: str, influx_url: str | None, influx_api: str | None) -> None:
    """Upsert the datasources, the plantems folder and the dashboards in a running Grafana.

    The service-account token comes from PLANTEMS_GRAFANA_TOKEN; the datasources log in as the
    plant file's influxdb.users.grafana (or username/password, or the v2 token).
    """
    import os

    from plantems.grafana.provision import datasource_payloads
    from plantems.grafana.publish import PublishError, publish

    plant = _load(config_paths[0])
    token = os.environ.get("PLANTEMS_GRAFANA_TOKEN")
    if not token:
        click.echo("PLANTEMS_GRAFANA_TOKEN is not set: create a Grafana service-account token (role Admin) and "
                   "export it", err=True)
        sys.exit(2)
    cfg = plant.influxdb.as_role("grafana")
    try:
        api = InfluxApi(influx_api) if influx_api else cfg.api if cfg.api is not InfluxApi.AUTO else detect_api(cfg)
    except InfluxError as exc:
        click.echo(f"cannot ask InfluxDB for its API version ({exc}); give --influx-api v1 or v2", err=True)
        sys.exit(2)
    try:
        # v2: the grafana user's "password" is its read-only token, else the plant's token
        secret = (cfg.password if "grafana" in plant.influxdb.users else plant.influxdb.token) \
            if api is InfluxApi.V2 else cfg.password
        value = secret.resolve().get_secret_value() if secret is not None else None
    except ConfigError as exc:
        click.echo("influxdb credentials for Grafana: " + "; ".join(exc.problems), err=True)
        sys.exit(2)
    sources = datasource_payloads(plant, api=api, url=influx_url or cfg.url, username=cfg.username, secret=value)
    try:
        done = publish(url, token, datasources=sources, dashboards=_build_dashboards(config_paths))
    except PublishError as exc:
        click.echo(f"publish failed: {exc}", err=True)
        sys.exit(1)
    for line in done:
        click.echo(line)


@main.command()
@click.option("--config", "config_paths", type=click.Path(path_type=Path), multiple=True, default=(
    Path("config/plant.demo.yaml"), Path("config/plant.changde.yaml")), show_default=True,
              help="A site's plant file; give it once per site (they share one InfluxDB and Mosquitto).")
@click.option("--group", "group_path", type=click.Path(path_type=Path), default=Path("config/group.demo.yaml"),
              show_default=True, help="Group file: the group report after the sites' first reports, and the "
              "group rollup on schedule (none if the file does not exist).")
@click.option("--var", "var_dir", type=click.Path(path_type=Path), default=Path("var"), show_default=True)
@click.option("--backfill-days", type=float, default=None,
              help="Days of history to simulate (default: from the first day of last month).")
def demo(config_paths: tuple[Path, ...], group_path: Path, var_dir: Path, backfill_days: float) -> None:
    """Run the demo parks: local InfluxDB and Mosquitto, simulator, collector and analytics (until Ctrl-C)."""
    from plantems.demo import DemoGroup, DemoSite, run_demo

    sites = [DemoSite(path.resolve(), _load(path)) for path in config_paths]
    group = None
    if group_path.exists():  # a bad group file refuses to start, like a bad plant file
        loaded = _load_group(group_path)
        group = DemoGroup(group_path.resolve(), loaded.id, {p.site.id: p.source_path or group_path
                                                            for p in loaded.plants})
    else:
        click.echo(f"no group file {group_path}: the demo runs without the group report")
    sys.exit(run_demo(sites, var_dir=var_dir, group=group, backfill_days=backfill_days))


if __name__ == "__main__":
    main()
