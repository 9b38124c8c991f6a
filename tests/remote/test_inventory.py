"""Ansible inventories (YAML and INI) and --on hosts as boards. The expected boards are worked out by hand from
Ansible's "How to build your inventory" guide: ranges, children, variable precedence (all < parent < child <
host), and its host patterns."""

from __future__ import annotations

from pathlib import Path

import pytest

from accel.core.errors import ConfigError
from accel.remote.boards import boards_on, expand_range
from accel.remote.inventory import read_inventory

YAML = """\
all:
  vars:
    ansible_user: admin
    ansible_python_interpreter: /usr/bin/python3
  hosts:
    lab.local:
  children:
    pis:
      vars:
        ansible_user: pi
        accel_dir: /srv/accel
      children:
        pi4:
          hosts:
            pi4-[a:b].local:
        pi5:
          vars:
            ansible_python_interpreter: /home/pi/venv/bin/python
          hosts:
            pi5.local:
              ansible_host: 192.168.1.50
              ansible_port: 2222
              ansible_ssh_private_key_file: ~/.ssh/pi5
            pi5-hailo.local:
              ansible_user: hailo
"""

INI = """\
# the same fleet, INI form
lab.local

[pi4]
pi4-[a:b].local

[pi5]
pi5.local ansible_host=192.168.1.50 ansible_port=2222 ansible_ssh_private_key_file=~/.ssh/pi5
pi5-hailo.local ansible_user=hailo

[pis:children]
pi4
pi5

[pis:vars]
ansible_user=pi
accel_dir=/srv/accel

[pi5:vars]
ansible_python_interpreter=/home/pi/venv/bin/python

[all:vars]
ansible_user=admin
ansible_python_interpreter=/usr/bin/python3
"""


@pytest.fixture(params=["yaml", "ini"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / ("hosts.yml" if request.param == "yaml" else "hosts.ini")
    path.write_text(YAML if request.param == "yaml" else INI)
    return path


def test_every_host_with_its_variables_merged_all_then_parent_then_child_then_host(fleet: Path) -> None:
    boards = {b.name: b for b in read_inventory(fleet).boards()}
    assert sorted(boards) == ["lab.local", "pi4-a.local", "pi4-b.local", "pi5-hailo.local", "pi5.local"]
    lab = boards["lab.local"]
    assert (lab.host, lab.user, lab.port, lab.interpreter, lab.accel_dir) == ("lab.local", "admin", None,
                                                                              "/usr/bin/python3", "")
    pi4 = boards["pi4-b.local"]  # pis' user over all's; all's interpreter
    assert (pi4.host, pi4.user, pi4.interpreter, pi4.accel_dir) == ("pi4-b.local", "pi", "/usr/bin/python3",
                                                                    "/srv/accel")
    assert set(pi4.groups) == {"pis", "pi4"}
    pi5 = boards["pi5.local"]  # the host's own address, port and key; pi5's interpreter over all's
    assert (pi5.host, pi5.port, pi5.key_file, pi5.user, pi5.interpreter) == (
        "192.168.1.50", 2222, "~/.ssh/pi5", "pi", "/home/pi/venv/bin/python")
    assert boards["pi5-hailo.local"].user == "hailo"  # host variable over every group's


@pytest.mark.parametrize(("pattern", "expected"), [
    ("pis", ["pi4-a.local", "pi4-b.local", "pi5.local", "pi5-hailo.local"]),
    ("pi5", ["pi5.local", "pi5-hailo.local"]),
    ("pi4:pi5", ["pi4-a.local", "pi4-b.local", "pi5.local", "pi5-hailo.local"]),
    ("pis:!pi4", ["pi5.local", "pi5-hailo.local"]),
    ("pis:&pi5", ["pi5.local", "pi5-hailo.local"]),
    ("pis,!pi5-hailo.local", ["pi4-a.local", "pi4-b.local", "pi5.local"]),
    ("*.local:!pis", ["lab.local"]),
    ("~pi5.*", ["pi5.local", "pi5-hailo.local"]),
    ("all", ["lab.local", "pi4-a.local", "pi4-b.local", "pi5.local", "pi5-hailo.local"]),
    ("lab.local", ["lab.local"]),
    ("!pi4", ["lab.local", "pi5.local", "pi5-hailo.local"]),  # no plain term: from all, as Ansible starts
    ("!pi4:pis", ["pi5.local", "pi5-hailo.local"]),  # the plain terms first, then the exclusions
    ("&pi5", ["pi5.local", "pi5-hailo.local"]),
])
def test_limit_patterns_as_ansible_reads_them(fleet: Path, pattern: str, expected: list[str]) -> None:
    assert sorted(b.name for b in read_inventory(fleet).select(pattern)) == sorted(expected)


def test_a_limit_that_picks_nothing_names_the_groups_and_hosts(fleet: Path) -> None:
    with pytest.raises(ConfigError, match=r"--limit: 'pi3' picks no host .*its groups: .*pis.*its hosts: lab.local"):
        read_inventory(fleet).select("pi3")
    with pytest.raises(ConfigError, match="picks no host"):  # ~regex is anchored at the start, as re.match
        read_inventory(fleet).select("~local")


def test_accel_python_first_and_ansibles_own_discovery_ignored(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text("[pis]\na ansible_python_interpreter=auto_silent\nb accel_python=/opt/accel/bin/python "
                    "ansible_python_interpreter=/usr/bin/python3\nc ansible_user='{{ lookup(\"env\", \"USER\") }}'\n")
    with pytest.raises(ConfigError, match="host c: ansible_user .* is a Jinja template"):
        read_inventory(path).boards()
    path.write_text("[pis]\na ansible_python_interpreter=auto_silent\nb accel_python=/opt/accel/bin/python "
                    "ansible_python_interpreter=/usr/bin/python3\n")
    a, b = read_inventory(path).boards()
    assert (a.python, a.interpreter) == ("python3", "")
    assert (b.python, b.interpreter) == ("/opt/accel/bin/python", "/usr/bin/python3")


def test_an_ini_file_whose_first_host_has_a_port_is_read_as_ini(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("pi1.local:2222\n[pis]\npi2.local\n")
    assert [(b.name, b.port) for b in read_inventory(path).boards()] == [("pi1.local", 2222), ("pi2.local", None)]


@pytest.mark.parametrize(("pattern", "expected"), [
    ("pi[1:3].local", ["pi1.local", "pi2.local", "pi3.local"]),
    ("node[01:10:4]", ["node01", "node05", "node09"]),
    ("db-[a:c]", ["db-a", "db-b", "db-c"]),
    ("r[1:2]c[1:2]", ["r1c1", "r1c2", "r2c1", "r2c2"]),
    ("plain.local", ["plain.local"]),
])
def test_host_ranges(pattern: str, expected: list[str]) -> None:
    assert expand_range(pattern) == expected


def test_ini_host_with_port_and_quoted_values(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("[boards]\nbadwolf.example.com:5309 ansible_python_interpreter='/opt/my venv/bin/python'\n")
    (board,) = read_inventory(path).boards()
    assert (board.name, board.port, board.interpreter) == ("badwolf.example.com", 5309, "/opt/my venv/bin/python")


@pytest.mark.parametrize(("text", "message"), [
    ("all:\n  hosts: [a, b]\n", "hosts must be a mapping"),
    ("all:\n  children:\n    g:\n      hots:\n        a:\n", "unknown key 'hots'"),
    ("all:\n  hosts:\n    a:\n      ansible_port: http\n", "expected a port number"),
    ("all:\n  hosts:\n    a: [1]\n", "expected its variables as a mapping"),
    ("all: {hosts: {a: }\n", "not a YAML inventory"),
    ("[a:children]\nb\n[b:children]\na\n", "are their own children"),
    ("[pis\nhost\n", "is not a section"),
    ("[pis:vars]\nnovalue\n", "expected key=value"),
    ("[g]\nh[3:1]\n", "is empty"),
    ("all:\n  vars: {x: 1}\n", "names no host"),
])
def test_bad_inventories_are_one_line_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "inv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        read_inventory(path).boards()
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_missing_inventory_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such inventory file"):
        read_inventory(tmp_path / "none.yml")
    with pytest.raises(ConfigError, match="is a folder"):
        read_inventory(tmp_path)


def test_on_hosts_as_ssh_takes_them() -> None:
    a, b, c = boards_on(["pi@pi5.local", "lab-pi4", "ssh://ubuntu@[::1]:2200"])
    assert (a.name, a.host, a.user, a.port) == ("pi@pi5.local", "pi5.local", "pi", None)
    assert (b.host, b.user, b.port) == ("lab-pi4", None, None)  # an ssh config alias: ssh's config says the rest
    assert (c.host, c.user, c.port) == ("::1", "ubuntu", 2200)
    for bad in ["-oProxyCommand=x", "pi@", "a b", "ssh://x:99999"]:
        with pytest.raises(ConfigError, match="--on"):
            boards_on([bad])
    with pytest.raises(ConfigError, match="named twice"):
        boards_on(["pi5", "pi5"])


@pytest.mark.parametrize("flag", [["--limit", "pi5"], ["--install"], ["--one-at-a-time"], ["--accept-new-host-keys"],
                                  ["--ssh-config", "x"], ["--wheelhouse", "w"]])
def test_a_board_option_without_boards_is_refused_not_ignored(flag: list[str]) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "accel", "compare", *flag, "--frames", "1"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert f"option {flag[0]}: it goes with --on HOST or --hosts FILE" in done.stderr
    assert "capturing" not in done.stdout  # nothing ran here
