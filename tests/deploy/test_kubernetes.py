"""``deploy/`` rendered by kustomize, decoded strictly into the Kubernetes API types, then checked
point by point against what an operator expects (probes, security, policies, budgets, autoscaling)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from config.topology import MODULES
from messaging.kafka.topics import DEFAULT_PARTITIONS
from messaging.registry import subscriptions
from tests.deploy.conftest import env_example_names, management_commands, run_validator
from tests.support.processes import REPO

pytestmark = pytest.mark.deploy

QUIRE_IMAGE = "quire:latest"
WRITABLE_QUIRE_PATHS = {"/tmp", "/app/var"}


def render() -> str:
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.fail("rendering deploy/ needs kubectl (with kustomize): install Debian's kubernetes-client")
    result = subprocess.run([kubectl, "kustomize", str(REPO / "deploy")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kubectl kustomize deploy/ failed:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def rendered() -> str:
    return render()


@pytest.fixture(scope="module")
def objects(validator, rendered) -> list[dict]:
    result = run_validator(validator, "k8s", stdin=rendered)
    assert result.returncode == 0, f"deploy/ does not decode strictly into the Kubernetes API types:\n{result.stderr}"
    report = json.loads(result.stdout)
    print(f"\nkubernetes: {report['count']} objects checked strictly against the API types", file=sys.stderr)
    return [
        {**entry["object"], "kind": entry["kind"], "apiVersion": entry["apiVersion"]} for entry in report["objects"]
    ]


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


def test_a_misspelt_field_fails(validator, rendered):
    broken = rendered.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem", 1)
    result = run_validator(validator, "k8s", stdin=broken)
    assert result.returncode != 0 and "unknown field" in result.stderr
    wrong_type = rendered.replace("replicas: 2", 'replicas: "two"', 1)
    assert run_validator(validator, "k8s", stdin=wrong_type).returncode != 0
    unknown_kind = rendered + "\n---\napiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n"
    assert "not a kind" in run_validator(validator, "k8s", stdin=unknown_kind).stderr


def test_every_object_is_checked_and_lives_in_the_namespace(objects):
    assert len(objects) >= 60
    for o in objects:
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == "quire", f"{o['kind']}/{o['metadata']['name']}"
        assert o["metadata"]["labels"].get("app.kubernetes.io/part-of") == "quire"


def test_each_module_has_its_workloads(objects):
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


def test_overdue_checkouts_are_resolved_by_one_cronjob_and_no_deployment(objects):
    cronjob = of_kind(objects, "CronJob")["orders-resolve-pending"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "manage.py", "orders_resolve_pending"]
    assert {"name": "SERVICE", "value": "orders"} in container["env"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    for name, deployment in of_kind(objects, "Deployment").items():
        if deployment["metadata"]["labels"].get("quire/module") == "orders":
            assert "--no-sagas" in pod_spec(deployment)["containers"][0]["command"], name


def test_services_wait_for_their_migrations_and_jobs_never_block_an_apply(objects):
    for name, job in of_kind(objects, "Job").items():
        # A finished Job removes itself: the next `kubectl apply -k` creates it anew (a Job's template is immutable).
        assert job["spec"]["ttlSecondsAfterFinished"] == 0, name
        assert job["spec"].get("activeDeadlineSeconds"), name
    for name, deployment in of_kind(objects, "Deployment").items():
        if role(deployment) not in ("web", "relay", "consumer"):
            continue
        module = deployment["metadata"]["labels"]["quire/module"]
        init = pod_spec(deployment)["initContainers"][0]
        assert "migrate --check" in " ".join(init["command"]), name
        assert init["env"] == pod_spec(deployment)["containers"][0]["env"], f"{name}: the wait checks another database"
        migrate = of_kind(objects, "Job")[f"{module}-migrate"]
        assert pod_spec(migrate)["containers"][0]["env"] == init["env"]


def test_every_service_has_its_own_service_account(objects):
    accounts = of_kind(objects, "ServiceAccount")
    assert set(MODULES) | {"gateway"} <= set(accounts)
    for name, workload in workloads(objects).items():
        spec = pod_spec(workload)
        assert spec["serviceAccountName"] in accounts, name
        module = workload["metadata"]["labels"].get("quire/module")
        if module:
            assert spec["serviceAccountName"] == module, name
    assert all(a.get("automountServiceAccountToken") is False for a in accounts.values())


def test_network_policies_let_only_the_gateway_reach_a_service(objects):
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
                module = values["SERVICE"]["value"]
                assert module in MODULES, name
                if "DATABASE_URL" in values:
                    secret = values["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"]
                    assert (
                        secret
                        == f"quire-db-{module}"
                        == values[f"{module.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"]
                    )
                private = any(m["mountPath"] == "/keys/private" for m in container.get("volumeMounts", []))
                assert private == (module == "accounts" and "DATABASE_URL" in values), f"{name}: private key"
