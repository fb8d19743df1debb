import BundleSyncCore
import BundleSyncFormat
import Foundation

/// What a bundle holds, gathered while reading and verifying it (`inspect`, `verify`).
public struct BundleSummary {
    public struct OriginSummary: Sendable {
        public var origin: ReplicaID
        public var firstSeq: UInt64
        public var lastSeq: UInt64
        public var batches: Int
    }
    public struct TableSummary: Sendable {
        public var name: String
        public var rows = 0
        public var deletes = 0
        public var cells = 0
    }

    public var path: String
    public var header: BundleHeader
    public var fileBytes: Int
    public var bodyBytes: Int
    /// The bundle's format version.
    public var formatVersion: Int = 1
    public var origins: [OriginSummary] = []
    public var tables: [String: TableSummary] = [:]
    public var oldest: HLC?
    public var newest: HLC?
    /// Every row change, when asked for (`inspect --rows`). Clocks (64 bits, beyond what a
    /// JSON number holds exactly) are decimal strings.
    public var rows: [[String: Any]]? = nil

    /// Reads a whole bundle, checking everything it can prove on its own.
    ///
    /// Without `includeRows`, batches and snapshot chunks are walked and counted in place
    /// (``BundleReader/nextBatchOutline()``), which checks the same things without building
    /// their rows.
    ///
    /// - Parameters:
    ///   - includeRows: Also collect every row change (for `inspect --rows`).
    ///   - each: Called with each batch's header entry and outline, in order.
    /// - Throws: `.badData` naming the file and what is wrong, `.noInput` if it is missing.
    ///   - keyring: Opens a bundle encrypted to its replica. Without it, or when the bundle
    ///     is not encrypted to that replica, an encrypted bundle is proved whole and signed,
    ///     and the summary holds only what its header shows in the clear
    ///     (``BundleHeader/isOpened`` is false).
    public static func read(path: String, includeRows: Bool = false, progress: ProgressHandler? = nil, keyring: BundleKeyring? = nil,
                            each: ((BundleHeader.BatchEntry, Batch.Outline) throws -> Void)? = nil) throws -> BundleSummary {
        let reader = try BundleReader(path: path, keyring: keyring)
        let label = "verifying \(PathText.fileName(of: path))"
        defer { progress?(ProgressEvent(phase: label, kind: .finished)) }
        var s = BundleSummary(path: path, header: reader.header, fileBytes: reader.fileSize,
                              bodyBytes: Int(reader.trailer.uncompressedLength), formatVersion: Int(reader.version))
        if includeRows { s.rows = [] }
        func nextBatch() throws -> (BundleHeader.BatchEntry, Batch.Outline, Batch?)? {
            if includeRows { return try reader.nextBatch().map { ($0.entry, $0.batch.outline, $0.batch) } }
            return try reader.nextBatchOutline().map { ($0.entry, $0.outline, nil) }
        }
        while let (entry, outline, batch) = try nextBatch() {
            progress?(ProgressEvent(phase: label, unit: "bytes", kind: .step(done: reader.fileBytesRead, total: reader.fileSize)))
            try each?(entry, outline)
            if let i = s.origins.firstIndex(where: { $0.origin == entry.origin }) {
                s.origins[i].lastSeq = entry.seq
                s.origins[i].batches += 1
            } else {
                s.origins.append(OriginSummary(origin: entry.origin, firstSeq: entry.seq, lastSeq: entry.seq, batches: 1))
            }
            s.widen(outline.hlcRange)
            for t in outline.sections { s.tally(t) }
            for t in batch?.tables ?? [] {
                for r in t.rows {
                    var row: [String: Any] = [
                        "origin": entry.origin.hex, "batch": entry.seq, "table": t.table,
                        "key": r.key.map(\.jsonValue), "causal_length": r.causalLength,
                    ]
                    if let h = r.rowHLC { row["row_hlc"] = String(h.rawValue) }
                    if r.isAlive {
                        row["cells"] = r.cells.map { c -> [String: Any] in
                            var cell: [String: Any] = ["column": t.columns[c.column], "hlc": String(c.hlc.rawValue), "value": c.value.jsonValue]
                            if let m = c.merge { cell["merge"] = m.summary }
                            return cell
                        }
                    }
                    s.rows!.append(row)
                }
            }
        }
        func nextChunk() throws -> (SnapshotChunk.Outline, SnapshotChunk?)? {
            if includeRows { return try reader.nextSnapshotChunk().map { ($0.outline, $0) } }
            return try reader.nextSnapshotChunkOutline().map { ($0, nil) }
        }
        while let (outline, chunk) = try nextChunk() {
            progress?(ProgressEvent(phase: label, unit: "bytes", kind: .step(done: reader.fileBytesRead, total: reader.fileSize)))
            s.snapshotChunks += 1
            s.widen(outline.hlcRange)
            for t in outline.sections { s.tally(t) }
            for t in chunk?.tables ?? [] {
                for r in t.rows {
                    var row: [String: Any] = ["snapshot": true, "table": t.table, "key": r.key.map(\.jsonValue),
                                              "causal_length": r.causalLength, "row_hlc": String(r.rowHLC.rawValue),
                                              "row_origin": chunk!.origins[r.rowOrigin].hex]
                    if r.isAlive {
                        row["cells"] = r.cells.map { c -> [String: Any] in
                            var cell: [String: Any] = ["column": t.columns[c.column], "hlc": String(c.hlc.rawValue),
                                                       "origin": chunk!.origins[c.origin].hex, "value": c.value.jsonValue]
                            if let m = c.merge { cell["merge"] = m.summary }
                            return cell
                        }
                    }
                    s.rows!.append(row)
                }
            }
        }
        try reader.finish()
        return s
    }

    private mutating func widen(_ range: ClosedRange<HLC>?) {
        guard let range else { return }
        oldest = min(oldest ?? range.lowerBound, range.lowerBound)
        newest = max(newest ?? range.upperBound, range.upperBound)
    }

    private mutating func tally(_ section: Batch.Outline.Section) {
        var t = tables[section.table] ?? TableSummary(name: section.table)
        t.rows += section.rows
        t.deletes += section.deletes
        t.cells += section.cells
        tables[section.table] = t
    }

    /// For a snapshot bundle, the number of chunks read.
    public var snapshotChunks = 0

    public var batchCount: Int { header.batches.count }
    public var rowCount: Int { tables.values.reduce(0) { $0 + $1.rows } }
    public var cellCount: Int { tables.values.reduce(0) { $0 + $1.cells } }

    /// The JSON form of `inspect --json`.
    public var json: [String: Any] {
        var out: [String: Any] = [
            "path": path,
            "format_version": formatVersion,
            "exporter": ["id": header.exporter.hex, "name": header.exporterName] as [String: Any],
            "created": isoFormatter.string(from: Date(timeIntervalSince1970: Double(header.createdMilliseconds) / 1000)),
            "exporter_vector": header.exporterVector.json,
            "base_vector": header.baseVector.json,
            "required_capabilities": header.requiredCapabilities,
            "optional_capabilities": header.optionalCapabilities,
            "schemas": header.tables.map { t in
                ["table": t.name, "key": t.keyColumns, "fingerprint": t.fingerprint.hex,
                 "columns": t.columns.map { ["name": $0.name, "rule": $0.rule.description] }] as [String: Any]
            },
            "batches": header.batches.map { ["origin": $0.origin.hex, "seq": $0.seq, "hash": $0.hash.hex, "bytes": $0.length] as [String: Any] },
            "origins": origins.map { ["id": $0.origin.hex, "first": $0.firstSeq, "last": $0.lastSeq, "batches": $0.batches] as [String: Any] },
            "tables": tables.values.sorted { $0.name < $1.name }.map {
                ["name": $0.name, "rows": $0.rows, "deletes": $0.deletes, "cells": $0.cells] as [String: Any]
            },
            "file_bytes": fileBytes,
            "body_bytes": bodyBytes,
            "rows": rowCount,
            "cells": cellCount,
        ]
        if formatVersion >= 2 {
            out["exchange_key"] = hexString(header.exchangeKey ?? [])
            out["encrypted"] = header.isEncrypted
            out["recipients"] = header.recipients.map(\.replica.hex)
            if header.passphrase != nil { out["passphrase_recipient"] = true }
        }
        if !header.isOpened {
            out["opened"] = false
            for key in ["exporter_vector", "base_vector", "required_capabilities", "optional_capabilities", "schemas", "batches",
                        "origins", "tables", "body_bytes", "rows", "cells"] {
                out[key] = nil
            }
        }
        if let oldest, let newest {
            out["time_range"] = ["oldest": oldest.description, "newest": newest.description]
        }
        if let rows { out["row_changes"] = rows }
        if let heads = header.snapshotHeads {
            var snapshot: [String: Any] = ["chunks": snapshotChunks,
                                           "heads": heads.map { ["origin": $0.origin.hex, "seq": $0.seq, "hash": $0.hash.hex] as [String: Any] }]
            // A delta snapshot holds only the rows with a stamp at or after its floor.
            if let floor = header.snapshotFloor { snapshot["delta_floor"] = floor.description }
            out["snapshot"] = snapshot
        }
        return out
    }
}

extension SQLValue {
    /// A JSON rendering that keeps the SQLite type: integers as numbers (beyond ±2^53, which
    /// a JSON number does not hold exactly, as `{"integer": "decimal"}`), text as strings,
    /// REAL as `{"real": n}` and BLOB as `{"blob": "hex"}`.
    public var jsonValue: Any {
        switch self {
        case .null: NSNull()
        case .integer(let v): v.magnitude > 1 << 53 ? ["integer": String(v)] as [String: Any] : v as Any
        case .real(let v): ["real": v.isFinite ? v as Any : String(v), "bits": String(v.bitPattern, radix: 16)] as [String: Any]
        case .text(let b): String(validating: b, as: UTF8.self) as Any? ?? ["text_hex": hexString(b)]
        case .blob(let b): ["blob": hexString(b)]
        }
    }
}

/// One JSON document, keys sorted, for `--json` output.
public func jsonString(_ object: Any) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    return String(decoding: data, as: UTF8.self)
}
