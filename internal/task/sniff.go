package task

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
)

// sniffLen is how much of a file content sniffing reads: what
// net/http.DetectContentType considers.
const sniffLen = 512

// magic numbers that net/http.DetectContentType does not know, or that we
// name differently. Checked in order, before DetectContentType.
var magics = []struct {
	off int
	sig string
	typ string
}{
	{0, "\x1f\x8b", "gzip"},
	{0, "\x28\xb5\x2f\xfd", "zstd"},
	{0, "\xfd7zXZ\x00", "xz"},
	{0, "\x04\x22\x4d\x18", "lz4"},
	{0, "PAR1", "parquet"},
	{0, "PK\x03\x04", "zip"},
	{0, "PK\x05\x06", "zip"}, // empty archive
	{0, "\x7fELF", "elf"},
	{0, "SQLite format 3\x00", "sqlite"},
	{0, "ARROW1", "arrow"},
	{0, "Obj\x01", "avro"},
	{0, "ORC", "orc"},
	{0, "\x89HDF\r\n\x1a\n", "hdf5"},
	{0, "\x93NUMPY", "npy"},
	{257, "ustar", "tar"},
}

// compressors, and the extensions that name them (".tgz" also names the
// inner type, tar).
var compressors = map[string]bool{"gzip": true, "zstd": true, "bzip2": true, "xz": true, "lz4": true}

var compressedExt = map[string]struct{ comp, inner string }{
	"gz": {"gzip", ""}, "bgz": {"gzip", ""}, "tgz": {"gzip", "tar"},
	"zst": {"zstd", ""}, "zstd": {"zstd", ""}, "tzst": {"zstd", "tar"},
	"bz2": {"bzip2", ""}, "tbz2": {"bzip2", "tar"}, "tbz": {"bzip2", "tar"},
	"xz": {"xz", ""}, "txz": {"xz", "tar"},
	"lz4": {"lz4", ""},
}

// extTypes maps a lower-case extension to a type. It decides only where the
// content does not: generic text, generic binary, a compressor's payload, or
// a zip-based format.
var extTypes = map[string]string{
	"csv": "csv", "tsv": "tsv", "tab": "tsv",
	"json": "json", "jsonl": "ndjson", "ndjson": "ndjson",
	"xml": "xml", "html": "html", "htm": "html",
	"yaml": "yaml", "yml": "yaml", "toml": "toml", "ini": "ini",
	"md": "markdown", "txt": "text", "log": "log", "sql": "sql",
	"py": "python", "r": "r", "js": "javascript", "sh": "shell",
	"fa": "fasta", "fasta": "fasta", "fna": "fasta", "fq": "fastq", "fastq": "fastq",
	"vcf": "vcf", "sam": "sam", "bam": "bam", "bed": "bed", "gff": "gff", "gtf": "gtf",
	"parquet": "parquet", "avro": "avro", "orc": "orc", "arrow": "arrow", "feather": "arrow",
	"npy": "npy", "npz": "npz", "h5": "hdf5", "hdf5": "hdf5", "pkl": "pickle", "pickle": "pickle",
	"tar": "tar", "zip": "zip", "jar": "jar", "whl": "whl",
	"xlsx": "xlsx", "docx": "docx", "pptx": "pptx", "odt": "odt", "ods": "ods", "epub": "epub", "apk": "apk",
	"pdf": "pdf", "png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif", "tif": "tiff", "tiff": "tiff",
	"wav": "wav", "mp3": "mp3", "mp4": "mp4", "mkv": "mkv", "bin": "binary",
}

// zipBased are extensions of formats that are zip archives inside.
var zipBased = map[string]bool{
	"jar": true, "whl": true, "xlsx": true, "docx": true, "pptx": true,
	"odt": true, "ods": true, "epub": true, "apk": true, "npz": true,
}

// sniffType returns the type of a regular file from its name, its first
// bytes (up to sniffLen) and its size. The rules, in order:
//
//  1. size 0 → "empty";
//  2. a known magic number → that type; a compressor's type is prefixed
//     with the inner type named by the extension under the compressor's
//     own (data.csv.gz → "csv+gzip", x.tgz → "tar+gzip"), or for gzip
//     without one, sniffed from the decompressed first bytes; a zip-based
//     format is named by its extension (.jar, .xlsx …), else "zip";
//  3. net/http.DetectContentType: text is refined by the CSV/TSV/JSON/NDJSON
//     heuristics of sniffText; other MIME types give their subtype (image/png
//     → "png");
//  4. where content says only "text" or "binary", a known extension decides
//     (a one-column .csv is "csv"); otherwise "text" or "binary".
func sniffType(name string, head []byte, size int64) string {
	if size == 0 {
		return "empty"
	}
	if len(head) > sniffLen {
		head = head[:sniffLen]
	}
	complete := int64(len(head)) >= size
	ext := extOf(name)
	for _, m := range magics {
		if len(head) >= m.off+len(m.sig) && string(head[m.off:m.off+len(m.sig)]) == m.sig {
			return refineMagic(m.typ, name, ext, head)
		}
	}
	if len(head) >= 4 && string(head[:3]) == "BZh" && head[3] >= '1' && head[3] <= '9' {
		return refineMagic("bzip2", name, ext, head)
	}
	mime := http.DetectContentType(head)
	if strings.HasPrefix(mime, "text/plain") {
		if t := sniffText(head, complete); t != "text" {
			return t
		}
		if t, ok := extTypes[ext]; ok {
			return t
		}
		return "text"
	}
	if mime == "application/octet-stream" {
		if t, ok := extTypes[ext]; ok {
			return t
		}
		return "binary"
	}
	return mimeType(mime)
}

// refineMagic names compressed and zip-based files (rule 2 of sniffType).
func refineMagic(typ, name, ext string, head []byte) string {
	switch {
	case typ == "zip":
		if zipBased[ext] {
			return extTypes[ext]
		}
		return "zip"
	case compressors[typ]:
		inner := ""
		if ce, ok := compressedExt[ext]; ok {
			inner = ce.inner
			if inner == "" {
				inner = extTypes[extOf(strings.TrimSuffix(name, filepath.Ext(name)))]
			}
		} else if t, ok := extTypes[ext]; ok {
			inner = t // e.g. .bam, which is gzip (BGZF) inside
		}
		if inner == "" && typ == "gzip" {
			inner = sniffGzip(head)
		}
		if inner == "" {
			return typ
		}
		return inner + "+" + typ
	}
	return typ
}

// sniffGzip decompresses what it can of a gzip head and sniffs the result.
// It returns "" when nothing useful comes out.
func sniffGzip(head []byte) string {
	zr, err := gzip.NewReader(bytes.NewReader(head))
	if err != nil {
		return ""
	}
	buf := make([]byte, sniffLen)
	n, _ := io.ReadFull(zr, buf) // a truncated stream still yields its first bytes
	if n == 0 {
		return ""
	}
	buf = buf[:n]
	for _, m := range magics {
		if len(buf) >= m.off+len(m.sig) && string(buf[m.off:m.off+len(m.sig)]) == m.sig && !compressors[m.typ] {
			return m.typ
		}
	}
	mime := http.DetectContentType(buf)
	if strings.HasPrefix(mime, "text/plain") {
		// Whether the stream ended inside buf is unknown; treat as partial.
		return sniffText(buf, false)
	}
	if mime == "application/octet-stream" {
		return ""
	}
	return mimeType(mime)
}

// mimeType turns a MIME type into a type name: its subtype without an "x-"
// prefix or parameters ("image/png" → "png", "text/html; charset=utf-8" →
// "html").
func mimeType(mime string) string {
	mime, _, _ = strings.Cut(mime, ";")
	_, sub, ok := strings.Cut(strings.TrimSpace(mime), "/")
	if !ok {
		sub = mime
	}
	sub = strings.TrimPrefix(sub, "x-")
	return cleanType(sub)
}

// cleanType keeps a type name to [a-z0-9.+_-], at most 32 bytes, so it fits
// in a placeholder without quoting.
func cleanType(s string) string {
	s = strings.ToLower(s)
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < 32; i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '+', c == '_', c == '-':
			b = append(b, c)
		default:
			b = append(b, '_')
		}
	}
	if len(b) == 0 {
		return "binary"
	}
	return string(b)
}

// extOf is the lower-case extension of name without the dot.
func extOf(name string) string {
	return strings.ToLower(strings.TrimPrefix(filepath.Ext(name), "."))
}

// sniffText classifies text content: "ndjson", "json", "tsv", "csv" or
// "text". When complete is false the head is a prefix of the file and its
// last, possibly cut, line is ignored.
//
//   - JSON: the first non-space byte is '{' or '['; it is NDJSON when at
//     least two complete lines are each valid JSON; JSON when the whole file
//     is valid JSON, or when the file is longer than the head (a prefix
//     cannot be validated).
//   - TSV, then CSV: the complete lines parse (RFC 4180 quoting) into
//     records that all have the same number of fields, at least two.
func sniffText(head []byte, complete bool) string {
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	b := head
	if !complete {
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			b = b[:i+1]
		} else {
			b = nil // one unfinished line: nothing line-based can be judged
		}
	}
	t := bytes.TrimSpace(b)
	first := bytes.TrimSpace(head)
	if len(first) > 0 && (first[0] == '{' || first[0] == '[') {
		lines := nonEmptyLines(t)
		if len(lines) >= 2 {
			all := true
			for _, l := range lines {
				if !json.Valid(l) {
					all = false
					break
				}
			}
			if all {
				return "ndjson"
			}
		}
		if !complete || json.Valid(t) {
			return "json"
		}
	}
	if len(t) == 0 {
		return "text"
	}
	for _, d := range []struct {
		comma rune
		typ   string
	}{{'\t', "tsv"}, {',', "csv"}} {
		if !bytes.ContainsRune(t, d.comma) {
			continue
		}
		r := csv.NewReader(bytes.NewReader(t))
		r.Comma = d.comma
		r.ReuseRecord = true
		n, fields, ok := 0, 0, true
		for {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				ok = false
				break
			}
			if n == 0 {
				fields = len(rec)
			}
			n++
		}
		if ok && n > 0 && fields >= 2 {
			return d.typ
		}
	}
	return "text"
}

func nonEmptyLines(b []byte) [][]byte {
	var out [][]byte
	for l := range bytes.Lines(b) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}
