"""The GE gate as blocking asset checks, one per canonical table some configured provider feeds."""


from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, asset_check


def gate_check(table: str):
    @asset_check(asset=AssetKey(["canonical", table]), name=f"ge_{table}", blocking=True,
                 description=f"Great Expectations suite canonical.{table}")
    def check() -> AssetCheckResult:
        from canonry import ops
        from expectations.gate import validate_table

        results = validate_table(table)
        failed = [r for r in results if not r.success]
        from datetime import UTC, datetime

        ops.append("validation_results", [{
            "run_id": "dagster", "suite": f"canonical.{table}", "table_name": table, "expectation": r.expectation,
            "column_name": r.column, "success": r.success, "observed": r.observed,
            "unexpected_count": r.unexpected_count, "evaluated_at": datetime.now(UTC)} for r in results])
        return AssetCheckResult(
            passed=not failed, severity=AssetCheckSeverity.ERROR,
            metadata={"expectations": len(results), "failed": [f"{r.expectation}({r.column})" for r in failed]},
        )

    return check
