package qnx

import "syscall"

// Channel flags (ChannelCreate), with QNX's values.
const (
	NTO_CHF_FIXED_PRIORITY  = 0x0001
	NTO_CHF_UNBLOCK         = 0x0002
	NTO_CHF_THREAD_DEATH    = 0x0004
	NTO_CHF_DISCONNECT      = 0x0008
	NTO_CHF_NET_MSG         = 0x0010
	NTO_CHF_SENDER_LEN      = 0x0020
	NTO_CHF_COID_DISCONNECT = 0x0040
	NTO_CHF_REPLY_LEN       = 0x0080
	NTO_CHF_PRIVATE         = 0x1000
)

// supportedCHF are the channel flags ChannelCreate accepts. The others
// ask for something this package cannot give (see docs/porting-qnx.md).
const supportedCHF = NTO_CHF_FIXED_PRIORITY | NTO_CHF_UNBLOCK | NTO_CHF_DISCONNECT | NTO_CHF_SENDER_LEN | NTO_CHF_REPLY_LEN

// Connection flags and the side-channel bit of ConnectAttach's index.
const (
	NTO_COF_CLOEXEC  = 0x0001
	NTO_COF_NOSHARE  = 0x0040
	NTO_SIDE_CHANNEL = 0x40000000
)

// Timeout states (TimerTimeout's flags): 1 << STATE_x.
const (
	NTO_TIMEOUT_SEND    = 1 << 4
	NTO_TIMEOUT_RECEIVE = 1 << 5
	NTO_TIMEOUT_REPLY   = 1 << 6
)

// Kernel pulse codes. Applications use 0 (PULSE_CODE_MINAVAIL) to 127
// (PULSE_CODE_MAXAVAIL).
const (
	PULSE_CODE_UNBLOCK    = -32
	PULSE_CODE_DISCONNECT = -33
	PULSE_CODE_MINAVAIL   = 0
	PULSE_CODE_MAXAVAIL   = 127
)

// _msg_info flags.
const NTO_MI_UNBLOCK_REQ = 0x100

// sigevent notification kinds.
const (
	SIGEV_NONE    = 0
	SIGEV_SIGNAL  = 1
	SIGEV_PULSE   = 4
	SIGEV_UNBLOCK = 5
)

// Clocks for TimerTimeout: Linux's numbering (QNX's is not verified), and
// TIMER_ABSTIME as QNX's header defines it.
const (
	CLOCK_REALTIME  = 0
	CLOCK_MONOTONIC = 1
	TIMER_ABSTIME   = 0x80000000
)

// name_attach / name_open.
const (
	NAME_FLAG_ATTACH_GLOBAL  = 0x2
	NAME_FLAG_DETACH_SAVEDPP = 0x1
	IO_BASE                  = 0x100
	IO_CONNECT               = 0x100
	IO_MAX                   = 0x1FF
	IO_CONNECT_OPEN          = 2
	FTYPE_NAME               = 12
	ND_LOCAL_NODE            = 0
)

// Errno values. They are Linux's numbers for QNX's names (ETIMEDOUT is
// 110 here, 260 on QNX): a ported program compares errno with the names,
// and strerror describes them. EOK is success.
const (
	EOK       = syscall.Errno(0)
	EAGAIN    = syscall.EAGAIN
	EBADF     = syscall.EBADF
	EBUSY     = syscall.EBUSY
	EFAULT    = syscall.EFAULT
	EINTR     = syscall.EINTR
	EINVAL    = syscall.EINVAL
	ENOENT    = syscall.ENOENT
	ENOREMOTE = syscall.EREMOTE // Linux's "object is remote": no network manager for this nd
	ENOSYS    = syscall.ENOSYS
	ENOTSUP   = syscall.ENOTSUP
	EPERM     = syscall.EPERM
	ESRCH     = syscall.ESRCH
	ETIMEDOUT = syscall.ETIMEDOUT
	EMSGSIZE  = syscall.EMSGSIZE
	// ESRVRFAULT ("server fault on message pass") has no Linux number;
	// EBADMSG stands for it: the server's answer could not be read.
	ESRVRFAULT = syscall.EBADMSG
)
