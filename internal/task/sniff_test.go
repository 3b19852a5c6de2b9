package task

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
)

func gz(t *testing.T, data string) string {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, err := w.Write([]byte(data))
	must(t, err)
	must(t, w.Close())
	return b.String()
}

func tarOf(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	must(t, w.WriteHeader(&tar.Header{Name: "a.txt", Mode: 0o644, Size: 2}))
	_, err := w.Write([]byte("hi"))
	must(t, err)
	must(t, w.Close())
	return b.String()
}

func zipOf(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	fw, err := w.Create("a.txt")
	must(t, err)
	_, err = fw.Write([]byte("hi"))
	must(t, err)
	must(t, w.Close())
	return b.String()
}

func TestSniffType(t *testing.T) {
	csvBody := "id,name,score\n1,ann,3.5\n2,bob,4.0\n3,\"cy, jr\",2\n"
	long := strings.Repeat("1,alpha,2.5\n", 100) // longer than the sniffed head
	tests := []struct {
		name, file, content string
		want                string
	}{
		{"empty", "x.csv", "", "empty"},
		{"csv", "data.txt", csvBody, "csv"},
		{"csv, BOM", "data", "\xef\xbb\xbf" + csvBody, "csv"},
		{"csv, CRLF", "data", "a,b\r\n1,2\r\n", "csv"},
		{"csv one line", "data", "a,b,c\n", "csv"},
		{"csv cut mid-line", "data", long, "csv"},
		{"tsv", "data.csv", "a\tb\tc\n1\t2\t3\n", "tsv"},
		{"ragged commas are text", "notes", "hello, world\nno commas here\n", "text"},
		{"single column .csv", "ids.csv", "id\n1\n2\n", "csv"},
		{"single column, no extension", "ids", "id\n1\n2\n", "text"},
		{"json object", "x", `{"a": [1, 2], "b": {"c": null}}`, "json"},
		{"json array", "x", "[1,\n 2,\n 3]\n", "json"},
		{"json prefix of a big file", "x", "{\"rows\": [" + strings.Repeat(`{"k": 1}, `, 100), "json"},
		{"json with BOM", "x", "\xef\xbb\xbf{\"a\": 1}", "json"},
		{"minified json, one long line", "x", "[" + strings.Repeat(`{"k":1},`, 100) + `{"k":1}]`, "json"},
		{"ndjson", "x.json", "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n", "ndjson"},
		{"invalid json is not json", "x", "{not json\n", "text"},
		{"prose", "README", "Hello there.\nThis is text.\n", "text"},
		{"prose .md", "README.md", "Hello there.\nThis is text.\n", "markdown"},
		{"python source", "job.py", "import sys\nprint(sys.argv)\n", "python"},
		{"html", "x", "<!DOCTYPE html><html><body>x</body></html>", "html"},
		{"xml", "x", "<?xml version=\"1.0\"?><a/>", "xml"},
		{"gzip, inner by extension", "data.csv.gz", gz(t, "x y z\n"), "csv+gzip"},
		{"gzip, inner sniffed", "data.gz", gz(t, csvBody), "csv+gzip"},
		{"gzip of binary", "blob.gz", gz(t, "\x00\x01\x02\x03\xff"), "gzip"},
		{"bam is gzip inside", "reads.bam", gz(t, "BAM\x01"), "bam+gzip"},
		{"tgz", "src.tgz", gz(t, tarOf(t)), "tar+gzip"},
		{"tar.gz sniffed", "src.tar.gz", gz(t, tarOf(t)), "tar+gzip"},
		{"gzip of tar, no extension", "blob", gz(t, tarOf(t)), "tar+gzip"},
		{"zstd", "data.csv.zst", "\x28\xb5\x2f\xfd\x00\x00", "csv+zstd"},
		{"zstd no extension", "blob", "\x28\xb5\x2f\xfd\x00\x00", "zstd"},
		{"bzip2", "x.bz2", "BZh91AY&SY", "bzip2"},
		{"xz", "x.json.xz", "\xfd7zXZ\x00\x00", "json+xz"},
		{"parquet", "part-0", "PAR1\x15\x04", "parquet"},
		{"zip", "a.zip", zipOf(t), "zip"},
		{"xlsx", "book.xlsx", zipOf(t), "xlsx"},
		{"jar", "app.jar", zipOf(t), "jar"},
		{"tar", "a.tar", tarOf(t), "tar"},
		{"elf", "prog", "\x7fELF\x02\x01\x01\x00", "elf"},
		{"sqlite", "db", "SQLite format 3\x00\x10\x00", "sqlite"},
		{"npy", "a.npy", "\x93NUMPY\x01\x00", "npy"},
		{"hdf5", "a.h5", "\x89HDF\r\n\x1a\n\x00", "hdf5"},
		{"png", "img", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png"},
		{"pdf", "doc", "%PDF-1.7\n%\xe2\xe3", "pdf"},
		{"csv content beats .json extension", "x.json", csvBody, "csv"},
		{"binary", "blob", "\x00\x01\x02\x03\x04\xfe", "binary"},
		{"binary with known extension", "weights.pkl", "\x80\x04\x95\x00\x00", "pickle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := []byte(tt.content)
			if len(head) > sniffLen {
				head = head[:sniffLen]
			}
			if got := sniffType(tt.file, head, int64(len(tt.content))); got != tt.want {
				t.Errorf("sniffType(%q, %q…) = %q, want %q", tt.file, head[:min(len(head), 24)], got, tt.want)
			}
		})
	}
}

func TestCleanType(t *testing.T) {
	tests := map[string]string{
		"png": "png", "vnd.ms-fontobject": "vnd.ms-fontobject", "A/B C": "a_b_c",
		"": "binary", strings.Repeat("x", 40): strings.Repeat("x", 32),
	}
	for in, want := range tests {
		if got := cleanType(in); got != want {
			t.Errorf("cleanType(%q) = %q, want %q", in, got, want)
		}
	}
}
