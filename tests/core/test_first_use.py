"""What a first-time user runs into: the module as a client, parameter names, missing extras."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def run_script(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "AESOP_DATA_DIR": str(tmp_path / "data"), "AESOP_POOL_SIZE": "1"},
    )


def test_the_module_client_registers_functions_and_parameters_may_be_called_name(
    tmp_path: Path,
) -> None:
    # As the README writes it: `import aesoperator as aesop`, then `@aesop.function`, and a
    # plan step whose function takes `name` (the framework's own `name` is positional-only).
    proc = run_script(
        tmp_path,
        """
        import aesoperator as aesop
        from aesoperator import Task

        @aesop.function
        def greet(name: str, fn: str = "!") -> str:
            return f"hello {name}{fn}"

        @aesop.handler("naming")
        async def naming(ctx, name):
            ctx.emit("seen", kind="a kind", name=name)
            with ctx.action("act", name=name):
                pass
            return await ctx.step("step", lambda name, fn: f"{name}/{fn}", name=name, fn="f")

        plan = Task(name="plan", plan=[{"action": "greet", "args": {"name": "ada"}}])
        print(aesop.execute_task(plan).content)
        result = aesop.execute_task(Task(name="naming", inputs={"name": "bob"}))
        print(result.content)
        seen = [e.data for e in aesop.get_events(result.execution_id) if e.kind == "seen"]
        print(seen)
        """,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["hello ada!", "bob/f"]
    assert lines[2] == "[{'kind': 'a kind', 'name': 'bob'}]"


def test_a_missing_llm_extra_names_the_install_command(tmp_path: Path) -> None:
    # The `openai` SDK made unimportable, as when `aesoperator[llm]` was not installed.
    proc = run_script(
        tmp_path,
        """
        import sys
        sys.modules["openai"] = None
        from aesoperator import Aesoperator, Task, UserError

        llm = "openai:gpt-4.1-mini?base_url=http://127.0.0.1:9/v1"
        with Aesoperator(data_dir="data", isolation="inline", llm=llm) as aesop:
            try:
                aesop.execute_task(Task(name="free_form", description="find the price"))
            except UserError as exc:
                print(type(exc).__name__, exc)
        """,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pip install 'aesoperator[llm]'" in proc.stdout
    assert "'openai' package is needed" in proc.stdout
