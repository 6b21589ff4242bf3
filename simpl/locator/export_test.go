package locator

// SetScanFailedHook sets testHookScanFailed (nil: none).
func SetScanFailedHook(f func(error)) {
	if f == nil {
		testHookScanFailed.Store(nil)
		return
	}
	testHookScanFailed.Store(&f)
}

// SetScanHook sets testHookScan (nil: none).
func SetScanHook(f func()) {
	if f == nil {
		testHookScan.Store(nil)
		return
	}
	testHookScan.Store(&f)
}
