"""The rule book rendered for people and programs: the trainers' reference card."""

import json
from enum import StrEnum

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.table import Table

from simulator.protocol import RULES, AgreementProfile, Rule


class RuleFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"


def rule_records(rules: tuple[Rule, ...] = RULES) -> list[dict[str, str]]:
    return [
        {"id": r.id, "article": r.article, "severity": r.severity.value, "summary": r.summary}
        for r in rules
    ]


def render_rules(
    fmt: RuleFormat,
    console: Console,
    rules: tuple[Rule, ...] = RULES,
    title: str = "Rule book: Articles 4-7 and 9 of the cooperation agreement",
) -> None:
    if fmt is RuleFormat.JSON:
        # Plain print: rich would wrap and colour the JSON.
        console.file.write(json.dumps(rule_records(rules), ensure_ascii=False, indent=2) + "\n")
        return
    if fmt is RuleFormat.MARKDOWN:
        lines = ["| id | article | severity | rule |", "|---|---|---|---|"]
        lines += [f"| `{r.id}` | {r.article} | {r.severity.value} | {r.summary} |" for r in rules]
        console.file.write("\n".join(lines) + "\n")
        return
    colours = {"error": "red", "warning": "yellow", "info": "blue"}
    if console.width >= WIDE:
        table = Table(title=title, box=box.SIMPLE_HEAVY, show_lines=False)
        table.add_column("Article", no_wrap=True)
        table.add_column("Severity", no_wrap=True)
        table.add_column("Rule id", no_wrap=True, style="cyan")
        table.add_column("What the procedure requires")
        for r in rules:
            sev = r.severity.value
            table.add_row(_article(r), f"[{colours[sev]}]{sev}[/]", r.id, r.summary)
        console.print(table)
        return
    # Narrow: the rule's article, severity and id on one line, what it requires under it at
    # the full width, so no sentence is squeezed into what the id columns leave.
    console.print(f"[bold]{title}[/]", highlight=False)
    for r in rules:
        sev = r.severity.value
        console.print()
        console.print(
            f"[bold]{_article(r)}[/]  [{colours[sev]}]{sev}[/]  [cyan]{r.id}[/]",
            highlight=False,
            no_wrap=True,
            overflow="ignore",
            crop=False,
        )
        console.print(Padding(r.summary, (0, 0, 0, 2)), highlight=False)


# Below this many columns the table leaves too little room for the sentences.
WIDE = 110


def _article(rule: Rule) -> str:
    return f"Art. {rule.article}" if any(c.isdigit() for c in rule.article) else "procedure"


def profile_records(profiles: list[AgreementProfile]) -> list[dict[str, object]]:
    return [
        {
            "id": p.id,
            "title": p.short_title,
            "kind": p.kind,
            "languages": list(p.languages),
            "areas": list(p.areas),
            "refusal_grounds": list(p.refusal_grounds),
            "scope_article": p.scope_article,
        }
        for p in profiles
    ]


def render_profiles(fmt: RuleFormat, console: Console, profiles: list[AgreementProfile]) -> None:
    """The shipped agreements a scenario may name (`agreement: profile:`)."""
    if fmt is RuleFormat.JSON:
        records = profile_records(profiles)
        console.file.write(json.dumps(records, ensure_ascii=False, indent=2) + "\n")
        return
    columns = ("Id", "Agreement", "Kind", "Languages", "Areas", "Grounds of refusal")
    rows = [
        (
            p.id,
            p.short_title,
            p.kind,
            ", ".join(p.languages),
            f"{len(p.areas)} (Art. {p.areas_article})",
            f"{len(p.refusal_grounds)} (Art. {p.refusal_article})",
        )
        for p in profiles
    ]
    if fmt is RuleFormat.MARKDOWN:
        lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
        lines += [f"| `{row[0]}` | " + " | ".join(row[1:]) + " |" for row in rows]
        console.file.write("\n".join(lines) + "\n")
        return
    table = Table(title="Agreement profiles", box=box.SIMPLE_HEAVY)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
