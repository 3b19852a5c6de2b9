// Package trace reads public cluster resource-usage traces (Google cluster
// data 2011 and 2019, Bitbrains GWA-T-12) into runs: one identity's
// consecutive samples, per dimension, at the trace's fixed step.
//
// A run is what the offline evaluation scores and what a signature's
// history is made of:
//
//	google2011  identity = job            run = one job's day     (cpu %, mem %)
//	google2019  identity = job/task       run = one task          (cpu NCU, mem NMU)
//	bitbrains   identity = VM             run = one VM's month    (cpu MHz, mem MB, disk kB/s, net kB/s)
//
// Values are indexed by resource.Dim (CPU, Memory, and for bitbrains IO for
// disk and Net for network) but stay in the trace's own units, listed
// above: traces are normalised or counted in MHz and kB/s, not in cores,
// MiB, ops/s and Mbps, and the evaluation's scores (slack ratios,
// violation rates, relative errors) do not depend on the unit. The package
// owns only the input formats.
//
// Readers stream the CSV with encoding/csv (records reused) and group rows
// into runs as they go; a malformed file is refused with an error of the
// form "file:line:col: what". col is the 1-based field (column) index for a
// bad value or a wrong field count, and the 1-based byte column that
// encoding/csv reports for a CSV syntax error. Errors wrap ErrMalformed.
//
// Split and SplitAt make the temporal train/test split the evaluation
// protocol asks for: earlier runs train, later runs test.
package trace
