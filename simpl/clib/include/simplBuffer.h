/*
 * simplBuffer.h: gosimpl's extension to the C SIMPL API for large data
 * without copies. C SIMPL has none of these functions; a program that
 * includes this header links only against gosimpl's library.
 *
 * C SIMPL's own way to avoid a buffer of the caller's (whatsMyShmPtr with
 * Send(id, NULL, NULL, ...), Receive(&sender, NULL, 0) with
 * whatsThisShmPtr) cannot be copy-free here: its send area is one per
 * process, while gosimpl's shared memory gives each sender a lane of its
 * own with each receiver. These calls name the receiver instead.
 *
 * Sending:
 *   char *p = simplBufferGet(id, size);  // at least size bytes, for Sends to id
 *   ...build the request at p...
 *   int n = simplBufferSend(id, outBytes, inBytes);
 *   ...the reply, n bytes, is at p...
 * Through shared memory p is the lane the receiver reads: the request and
 * the reply are not copied in this process. Through FIFOs p is memory of
 * the library's and the exchange copies as Send does. p stays valid until
 * simplBufferFree(id), a simplBufferGet(id, larger) (which may move it,
 * keeping nothing) or name_detach. One thread at a time per id.
 *
 * Receiving:
 *   int n = simplReceiveInPlace(&sender);  // as Receive(&sender, NULL, 0)
 *   char *req = whatsThisShmPtr(sender);   // n bytes, in place
 *   char *out = simplReplyPtr(sender);     // simplReplySize(sender) bytes
 *   ...write the reply at out...
 *   Reply(sender, NULL, nbytes);           // answers with what is at out
 * Through shared memory req and out are the same place, the sender's
 * lane: read what you need of the request before writing the reply over
 * it. Through FIFOs req is a copy the library holds and out the sender's
 * segment. The handle's own FCMSG_REC data area stays empty (shmsize 0):
 * read the request through whatsThisShmPtr or simplRcopy.
 */
#ifndef GOSIMPL_SIMPLBUFFER_H
#define GOSIMPL_SIMPLBUFFER_H

#ifdef __cplusplus
extern "C" {
#endif

char *simplBufferGet(int id, unsigned size);
int simplBufferSend(int id, unsigned outBytes, unsigned inBytes);
int simplBufferFree(int id);
int simplReceiveInPlace(char **sender);
char *simplReplyPtr(char *sender);

#ifdef __cplusplus
}
#endif

#endif
