package predict

import "errors"

// Errors returned by this package.
var (
	// ErrConfig reports an invalid configuration value.
	ErrConfig = errors.New("predict: invalid config")
	// ErrNoData reports that nothing is known to predict from, not even a
	// global prior.
	ErrNoData = errors.New("predict: no data")
	// ErrModel reports a persisted model that cannot be loaded.
	ErrModel = errors.New("predict: bad model")
)
