"""``deploy/`` and its overlays rendered by kustomize, decoded strictly into the Kubernetes API types, then
checked point by point against what an operator expects (probes, security, policies, budgets, autoscaling,
which modules each process serves and where the gateway sends each module's prefix).

Checks that hold for any grouping run on every kustomization; the ones that spell out the four-service
layout (``<module>-web`` and so on) run on ``deploy/`` alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from config.topology import MODULES, served_modules
from messaging.kafka.topics import DEFAULT_PARTITIONS
from messaging.registry import subscriptions
from tests.deploy.conftest import env_example_names, management_commands, run_validator
from tests.support.processes import REPO

pytestmark = pytest.mark.deploy

QUIRE_IMAGE = "quire:latest"
WRITABLE_QUIRE_PATHS = {"/tmp", "/app/var"}

# Each kustomization, and the processes it runs: each process's name (its Deployments are
# <name>-web/-relay/-consumer, its Job <name>-migrate, its ServiceAccount <name>), the label its pods
# carry, and the modules it serves. "grouped" is QUIRE_SERVICES="accounts+catalog+orders recommendations".
KUSTOMIZATIONS = {
    "base": "deploy",
    "grouped": "deploy/overlays/grouped",
}
PROCESSES = {
    "base": {module: ({"quire/module": module}, (module,)) for module in MODULES},
    "grouped": {
        "shop": ({"quire/service": "shop"}, ("accounts", "catalog", "orders")),
        "recommendations": ({"quire/module": "recommendations"}, ("recommendations",)),
    },
}


def render(kustomization: str = "base") -> str:
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.fail("rendering deploy/ needs kubectl (with kustomize): install Debian's kubernetes-client")
    path = KUSTOMIZATIONS[kustomization]
    result = subprocess.run([kubectl, "kustomize", str(REPO / path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kubectl kustomize {path}/ failed:\n{result.stderr}"
    return result.stdout


def decode(validator, rendered: str, kustomization: str) -> list[dict]:
    result = run_validator(validator, "k8s", stdin=rendered)
    path = KUSTOMIZATIONS[kustomization]
    assert result.returncode == 0, f"{path}/ does not decode strictly into the Kubernetes API types:\n{result.stderr}"
    report = json.loads(result.stdout)
    print(f"\nkubernetes {path}/: {report['count']} objects checked strictly against the API types", file=sys.stderr)
    return [
        {**entry["object"], "kind": entry["kind"], "apiVersion": entry["apiVersion"]} for entry in report["objects"]
    ]


@pytest.fixture(scope="module", params=list(KUSTOMIZATIONS))
def kustomization(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def rendered(kustomization) -> str:
    return render(kustomization)


@pytest.fixture(scope="module")
def objects(validator, rendered, kustomization) -> list[dict]:
    """Every kustomization's objects, strictly decoded: the checks that hold for any grouping."""
    return decode(validator, rendered, kustomization)


@pytest.fixture(scope="module")
def base_objects(validator) -> list[dict]:
    """``deploy/`` alone: the checks that spell out the four-service layout."""
    return decode(validator, render("base"), "base")


@pytest.fixture(scope="module")
def processes(kustomization) -> dict[str, tuple[dict[str, str], tuple[str, ...]]]:
    return PROCESSES[kustomization]


def of_kind(objects, kind) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def workloads(objects) -> dict[str, dict]:
    return {
        f"{o['kind']}/{o['metadata']['name']}": o for o in objects if o["kind"] in ("Deployment", "Job", "StatefulSet")
    }


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def all_containers(spec: dict) -> list[dict]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def role(workload: dict) -> str:
    return workload["spec"]["template"]["metadata"]["labels"].get("quire/role", "")


def process_of(workload: dict) -> str | None:
    """The process a workload belongs to: its module in the base, its group's name in an overlay."""
    labels = workload["metadata"]["labels"]
    return labels.get("quire/service") or labels.get("quire/module")


def service_env(workload: dict) -> str:
    container = pod_spec(workload)["containers"][0]
    return next(v["value"] for v in container["env"] if v["name"] == "SERVICE")


def selects(selector: dict, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels, matchExpressions In/Exists) picks a pod with ``labels``."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        operator = expression["operator"]
        assert operator in ("In", "Exists"), f"selects() does not know {operator}: extend it"
        if expression["key"] not in labels:
            return False
        if operator == "In" and labels[expression["key"]] not in expression["values"]:
            return False
    return True


def peers(policy: dict, direction: str) -> list[dict]:
    key = "from" if direction == "ingress" else "to"
    return [peer for rule in policy["spec"].get(direction, []) for peer in rule.get(key, [])]


def test_a_misspelt_field_fails(validator, rendered):
    broken = rendered.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem", 1)
    result = run_validator(validator, "k8s", stdin=broken)
    assert result.returncode != 0 and "unknown field" in result.stderr
    wrong_type = rendered.replace("replicas: 2", 'replicas: "two"', 1)
    assert run_validator(validator, "k8s", stdin=wrong_type).returncode != 0
    unknown_kind = rendered + "\n---\napiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n"
    assert "not a kind" in run_validator(validator, "k8s", stdin=unknown_kind).stderr


def test_every_object_is_checked_and_lives_in_the_namespace(objects, processes):
    # Per process: ServiceAccount, Job, 2-3 Deployments, Service, budgets, autoscalers, policies.
    assert len(objects) >= 20 + 10 * len(processes)
    for o in objects:
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == "quire", f"{o['kind']}/{o['metadata']['name']}"
        assert o["metadata"]["labels"].get("app.kubernetes.io/part-of") == "quire"


def test_each_module_has_its_workloads(base_objects):
    objects = base_objects
    deployments = of_kind(objects, "Deployment")
    jobs = of_kind(objects, "Job")
    for module in MODULES:
        expected = {f"{module}-web", f"{module}-relay"} | ({f"{module}-consumer"} if subscriptions([module]) else set())
        assert expected <= set(deployments), module
        if not subscriptions([module]):
            assert f"{module}-consumer" not in deployments
        assert f"{module}-migrate" in jobs
        service = of_kind(objects, "Service")[module]
        assert service["spec"]["selector"] == {"quire/module": module, "quire/role": "web"}
    assert "quire-ensure-topics" in jobs and "gateway" in deployments


def test_every_container_is_locked_down(objects):
    for name, workload in workloads(objects).items():
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name
        mounted = {v["name"] for v in spec.get("volumes", [])}
        for container in all_containers(spec):
            where = f"{name} {container['name']}"
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"]["drop"] == ["ALL"] and not context["capabilities"].get("add"), where
            assert context["seccompProfile"]["type"] == "RuntimeDefault", where
            mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
            assert {m["name"] for m in mounts.values()} <= mounted, where
            if container["image"] == QUIRE_IMAGE and container["name"] != "static":
                assert set(mounts) >= WRITABLE_QUIRE_PATHS, f"{where}: writable paths {sorted(mounts)}"
                assert not any(m.get("readOnly") for path, m in mounts.items() if path in WRITABLE_QUIRE_PATHS)
            if container["image"].startswith("nginxinc/nginx-unprivileged"):
                assert {"/tmp", "/etc/nginx/conf.d"} <= set(mounts), where


def test_every_container_and_job_has_resources(objects):
    for name, workload in workloads(objects).items():
        for container in all_containers(pod_spec(workload)):
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), f"{name} {container['name']}"
            assert "memory" in resources["limits"], f"{name} {container['name']}"


def test_web_relay_and_consumer_probe_the_health_endpoints(objects):
    for name, deployment in of_kind(objects, "Deployment").items():
        if role(deployment) not in ("web", "relay", "consumer"):
            continue
        container = pod_spec(deployment)["containers"][0]
        command = container["command"]
        assert command[:3] == ["python", "manage.py", "run_service"], name
        port = int(command[command.index("--port") + 1])
        assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": port}
        expected = {
            "startupProbe": "/health/live/",
            "livenessProbe": "/health/live/",
            "readinessProbe": "/health/ready/",
        }
        if role(deployment) != "web":
            del expected["livenessProbe"]  # a heartbeat instead (below)
        http = tuple(expected)
        assert {kind: container[kind]["httpGet"]["path"] for kind in http} == expected, name
        for kind in http:
            assert container[kind]["httpGet"]["port"] == "http"
            assert {"name": "Host", "value": "localhost"} in container[kind]["httpGet"]["httpHeaders"]
        if role(deployment) != "web":
            # A relay or consumer alive but stuck inside a call still answers HTTP: its heartbeat file tells.
            probe = container["livenessProbe"]
            assert probe["exec"]["command"] == ["python", "manage.py", "check_heartbeat", role(deployment)], name
            assert probe["timeoutSeconds"] >= 10, f"{name}: the probe starts Django"
        config = of_kind(objects, "ConfigMap")["quire-config"]["data"]
        assert "localhost" in config["ALLOWED_HOSTS"].split(",")
        flags = set(command)
        assert {"web": {"--no-relay", "--no-consumer"}, "relay": {"--no-consumer"}, "consumer": {"--no-relay"}}[
            role(deployment)
        ] <= flags


def test_overdue_checkouts_are_resolved_by_one_cronjob_and_no_deployment(objects, processes):
    (process,) = [p for p, (_, modules) in processes.items() if "orders" in modules]
    (cronjob,) = of_kind(objects, "CronJob").values()
    assert cronjob["metadata"]["name"] == f"{process}-resolve-pending"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "manage.py", "orders_resolve_pending"]
    service = next(v["value"] for v in container["env"] if v["name"] == "SERVICE")
    assert served_modules(service) == processes[process][1]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    for name, deployment in of_kind(objects, "Deployment").items():
        if process_of(deployment) == process:
            assert "--no-sagas" in pod_spec(deployment)["containers"][0]["command"], name


def test_services_wait_for_their_migrations_and_jobs_never_block_an_apply(objects):
    for name, job in of_kind(objects, "Job").items():
        # A finished Job removes itself: the next `kubectl apply -k` creates it anew (a Job's template is immutable).
        assert job["spec"]["ttlSecondsAfterFinished"] == 0, name
        assert job["spec"].get("activeDeadlineSeconds"), name
    for name, deployment in of_kind(objects, "Deployment").items():
        if role(deployment) not in ("web", "relay", "consumer"):
            continue
        process = process_of(deployment)
        init = pod_spec(deployment)["initContainers"][0]
        assert "migrate --check" in " ".join(init["command"]), name
        assert init["env"] == pod_spec(deployment)["containers"][0]["env"], f"{name}: the wait checks another database"
        migrate = of_kind(objects, "Job")[f"{process}-migrate"]
        assert pod_spec(migrate)["containers"][0]["env"] == init["env"]


def test_every_service_has_its_own_service_account(objects, processes):
    accounts = of_kind(objects, "ServiceAccount")
    assert set(processes) | {"gateway"} <= set(accounts)
    for name, workload in workloads(objects).items():
        spec = pod_spec(workload)
        assert spec["serviceAccountName"] in accounts, name
        process = process_of(workload)
        if process:
            assert spec["serviceAccountName"] == process, name
    assert all(a.get("automountServiceAccountToken") is False for a in accounts.values())


def test_network_policies_let_only_the_gateway_reach_a_service(base_objects):
    objects = base_objects
    policies = of_kind(objects, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"} and "ingress" not in deny
    for module in MODULES:
        web = policies[f"{module}-web"]["spec"]
        assert web["podSelector"]["matchLabels"] == {"quire/module": module, "quire/role": "web"}
        assert [peer for rule in web["ingress"] for peer in rule["from"]] == [
            {"podSelector": {"matchLabels": {"quire/role": "gateway"}}}
        ]
        database = policies[f"postgres-{module}"]["spec"]
        assert database["podSelector"]["matchLabels"] == {"quire/database": module}
        assert [peer for rule in database["ingress"] for peer in rule["from"]] == [
            {"podSelector": {"matchLabels": {"quire/module": module}}}
        ]
        egress = policies[f"{module}-egress"]["spec"]["egress"]
        targets = [peer["podSelector"]["matchLabels"] for rule in egress for peer in rule["to"]]
        assert targets == [{"quire/database": module}, {"quire/role": "kafka"}], module
    kafka_from = [peer for rule in policies["kafka"]["spec"]["ingress"] for peer in rule["from"]]
    assert all("podSelector" in peer and "namespaceSelector" not in peer for peer in kafka_from)
    # Every path into a Quire pod is one of these: no policy admits a namespace but the gateway's own.
    for name, policy in policies.items():
        for rule in policy["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                if "namespaceSelector" in peer:
                    assert name == "gateway", name


def test_disruption_budgets_and_autoscalers(objects):
    deployments = of_kind(objects, "Deployment")
    budgets = of_kind(objects, "PodDisruptionBudget")
    for name, deployment in deployments.items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert any(b["spec"]["selector"]["matchLabels"] == selector for b in budgets.values()), f"{name} has no PDB"
    for name, budget in budgets.items():
        if "minAvailable" in budget["spec"]:
            target = next(
                d
                for d in deployments.values()
                if d["spec"]["selector"]["matchLabels"] == budget["spec"]["selector"]["matchLabels"]
            )
            hpa = of_kind(objects, "HorizontalPodAutoscaler").get(target["metadata"]["name"])
            floor = hpa["spec"]["minReplicas"] if hpa else target["spec"]["replicas"]
            assert floor > budget["spec"]["minAvailable"], f"{name} would block every drain"
    autoscalers = of_kind(objects, "HorizontalPodAutoscaler")
    for name, deployment in deployments.items():
        if role(deployment) in ("web", "consumer"):
            hpa = autoscalers[name]
            assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
            assert "replicas" not in deployment["spec"], f"{name}: an apply would reset the autoscaler's replicas"
            if role(deployment) == "consumer":
                workers = 1  # run_consumer --workers default: one group member per pod
                assert hpa["spec"]["maxReplicas"] * workers <= DEFAULT_PARTITIONS, name


def test_commands_variables_and_images_match_the_code(objects):
    commands = management_commands()
    known = env_example_names()
    config = of_kind(objects, "ConfigMap")["quire-config"]["data"]
    assert set(config) <= known, sorted(set(config) - known)
    for name, workload in workloads(objects).items():
        for container in all_containers(pod_spec(workload)):
            command = container.get("command", [])
            if container["image"] == QUIRE_IMAGE and command[:2] == ["python", "manage.py"]:
                assert command[2] in commands, f"{name}: manage.py {command[2]}"
            for variable in container.get("env", []):
                if container["image"] == QUIRE_IMAGE:
                    assert variable["name"] in known, f"{name}: {variable['name']} is not in .env.example"
            if container["image"] == QUIRE_IMAGE and container.get("env"):
                values = {v["name"]: v for v in container["env"]}
                served = served_modules(values["SERVICE"]["value"])  # raises on a SERVICE the code refuses
                if "DATABASE_URL" in values:
                    # Each served module its own database; `default` is the first module's (staff, sessions).
                    urls = {
                        v: values[v]["valueFrom"]["secretKeyRef"]["name"] for v in values if v.endswith("DATABASE_URL")
                    }
                    assert urls == {
                        "DATABASE_URL": f"quire-db-{served[0]}",
                        **{f"{module.upper()}_DATABASE_URL": f"quire-db-{module}" for module in served},
                    }, name
                private = any(m["mountPath"] == "/keys/private" for m in container.get("volumeMounts", []))
                assert private == ("accounts" in served and "DATABASE_URL" in values), f"{name}: private key"


def quire_pods(objects) -> dict[str, tuple[dict[str, str], tuple[str, ...]]]:
    """Every workload that runs Quire for some modules: its pod labels and the modules it serves."""
    return {
        name: (workload["spec"]["template"]["metadata"]["labels"], served_modules(service_env(workload)))
        for name, workload in workloads(objects).items()
        if process_of(workload)
    }


def test_each_process_runs_its_modules_in_its_own_workloads(objects, processes):
    deployments = of_kind(objects, "Deployment")
    jobs = of_kind(objects, "Job")
    expected = {"gateway"}
    for process, (labels, modules) in processes.items():
        roles = ["web", "relay"] + (["consumer"] if subscriptions(modules) else [])
        expected |= {f"{process}-{r}" for r in roles}
        for workload in [*(deployments[f"{process}-{r}"] for r in roles), jobs[f"{process}-migrate"]]:
            name = workload["metadata"]["name"]
            assert served_modules(service_env(workload)) == modules, f"{name} runs SERVICE={service_env(workload)}"
            assert labels.items() <= workload["spec"]["template"]["metadata"]["labels"].items(), name
        service = of_kind(objects, "Service")[process]
        assert service["spec"]["selector"] == {**labels, "quire/role": "web"}
    assert set(deployments) == expected


def test_every_module_is_served_exactly_once(objects, processes):
    grouping = [modules for _, modules in processes.values()]
    assert sorted(m for modules in grouping for m in modules) == sorted(MODULES)
    served = {}
    for name, workload in workloads(objects).items():
        if process_of(workload):
            for module in served_modules(service_env(workload)):
                served.setdefault((role(workload), module), []).append(name)
    # Its migrations, web, relay and (if it subscribes to anything) consumer: one workload each, so
    # no outbox is relayed twice over and no event handled by two groups.
    for module in MODULES:
        for r in ["migrate", "web", "relay"] + (["consumer"] if subscriptions((module,)) else []):
            assert len(served.get((r, module), [])) == 1, f"{module} {r}: {served.get((r, module))}"


def test_the_gateway_sends_each_prefix_to_the_process_that_serves_it(objects):
    nginx = next(c for c in pod_spec(of_kind(objects, "Deployment")["gateway"])["containers"] if c["name"] == "nginx")
    env = {v["name"]: v["value"] for v in nginx["env"]}
    services = of_kind(objects, "Service")
    webs = [d for d in of_kind(objects, "Deployment").values() if role(d) == "web" and process_of(d)]
    for module in MODULES:
        host, port = env[f"QUIRE_{module.upper()}_UPSTREAM"].split(":")
        service = services[host]
        assert int(port) in {p["port"] for p in service["spec"]["ports"]}, module
        picked = [
            d
            for d in webs
            if selects({"matchLabels": service["spec"]["selector"]}, d["spec"]["template"]["metadata"]["labels"])
        ]
        assert picked, f"/api/{module}/ goes to Service {host}, which selects no web pods"
        for deployment in picked:
            assert module in served_modules(service_env(deployment)), (
                f"/api/{module}/ goes to {deployment['metadata']['name']}, which runs SERVICE={service_env(deployment)}"
            )


def test_each_database_admits_only_the_processes_that_serve_its_module(objects):
    policies = of_kind(objects, "NetworkPolicy")
    gateway = {"quire/role": "gateway"}
    for name, (labels, served) in quire_pods(objects).items():
        egress = [p for p in policies.values() if selects(p["spec"]["podSelector"], labels)]
        reaches = [peer["podSelector"] for p in egress for peer in peers(p, "egress") if "podSelector" in peer]
        for module in MODULES:
            database = {"quire/database": module}
            admitted = any(
                selects(peer["podSelector"], labels) for peer in peers(policies[f"postgres-{module}"], "ingress")
            )
            assert admitted == (module in served), f"{name}: postgres-{module} admits it: {admitted}"
            assert any(selects(s, database) for s in reaches) == (module in served), f"{name} -> {module}'s database"
        assert any(selects(peer["podSelector"], labels) for peer in peers(policies["kafka"], "ingress")), name
        assert any(selects(s, {"quire/role": "kafka"}) for s in reaches), f"{name} -> Kafka"
        if labels.get("quire/role") == "web":
            ingress = [
                p for p in egress if "Ingress" in p["spec"]["policyTypes"] and p["metadata"]["name"] != "default-deny"
            ]
            assert ingress and all(
                peer == {"podSelector": {"matchLabels": gateway}} for p in ingress for peer in peers(p, "ingress")
            ), f"{name}: only the gateway may reach it"


def grouping_neutral(value):
    """A workload without what a grouping changes (names, labels, selectors, ServiceAccount, env, the
    private key, the wait's message): what is left is what a grouped process must keep from the base."""
    if isinstance(value, dict):
        dropped = {"metadata", "labels", "selector", "matchLabels", "serviceAccountName", "env", "scaleTargetRef"}
        return {k: grouping_neutral(v) for k, v in value.items() if k not in dropped}
    if isinstance(value, list):
        return [grouping_neutral(v) for v in value if not (isinstance(v, dict) and v.get("name") == "jwt-private")]
    if isinstance(value, str) and "waiting for the" in value:
        return "waiting for the migrations"
    return value


def test_the_grouped_process_runs_like_the_base_s_services(validator):
    """shop.yaml is orders.yaml with the grouping's changes only: a probe, flag, resource or budget
    the base changes for its services and the overlay does not follow fails here."""
    base = decode(validator, render("base"), "base")
    grouped = decode(validator, render("grouped"), "grouped")
    kinds = ("Deployment", "Job", "CronJob", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Service")
    compared = 0
    for kind in kinds:
        ours = of_kind(grouped, kind)
        for name, theirs in of_kind(base, kind).items():
            if not name.startswith("orders"):
                continue
            shop = ours[name.replace("orders", "shop", 1)]
            assert grouping_neutral(shop) == grouping_neutral(theirs), (
                f"{kind}/{shop['metadata']['name']} differs from the base's {name} beyond the grouping"
            )
            compared += 1
    assert compared >= 9


def test_the_shop_is_served_over_https_only(objects):
    config = of_kind(objects, "ConfigMap")["quire-config"]["data"]
    # The services redirect to HTTPS, send HSTS, mark cookies Secure; they know a request was HTTPS by the
    # X-Forwarded-Proto the ingress sets and the gateway keeps (tests/deploy/test_gateway.py).
    assert config["SECURE_HTTPS"] == "true"
    assert config.get("TRUST_X_FORWARDED_PROTO", "true") == "true"
    origins = config["CSRF_TRUSTED_ORIGINS"].split(",")
    ingresses = of_kind(objects, "Ingress")
    assert ingresses
    for name, ingress in ingresses.items():
        hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
        covered = {host for tls in ingress["spec"].get("tls", []) if tls.get("secretName") for host in tls["hosts"]}
        assert hosts <= covered, f"Ingress {name}: no certificate for {sorted(hosts - covered)}"
        assert {f"https://{host}" for host in hosts} <= set(origins), name
