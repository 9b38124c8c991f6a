/* A stub TFLite external delegate for tests: the external-delegate ABI, no accelerator.
 *
 * tflite_plugin_create_delegate accepts the option "verbose" and the classic GPU delegate's keys
 * (so gpu-delegate's option mapping can be checked against it); any other key is rejected through
 * report_error, and creation returns NULL, as a real delegate does. When $STUB_DELEGATE_RECORD names a
 * file, every key=value received is appended to it, one per line. Prepare claims no nodes: the whole
 * graph stays on the CPU ("nothing was delegated").
 *
 * The struct below mirrors TfLiteDelegate in tensorflow/lite/core/c/common.h (TF 2.x): data_, Prepare,
 * CopyFromBufferHandle, CopyToBufferHandle, FreeBufferHandle, flags, opaque_delegate_builder.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int TfLiteStatus; /* kTfLiteOk = 0 */
typedef struct TfLiteContext TfLiteContext;

typedef struct TfLiteDelegate {
  void* data_;
  TfLiteStatus (*Prepare)(TfLiteContext* context, struct TfLiteDelegate* delegate);
  TfLiteStatus (*CopyFromBufferHandle)(TfLiteContext*, struct TfLiteDelegate*, int, void*);
  TfLiteStatus (*CopyToBufferHandle)(TfLiteContext*, struct TfLiteDelegate*, int, void*);
  void (*FreeBufferHandle)(TfLiteContext*, struct TfLiteDelegate*, int*);
  int64_t flags;
  void* opaque_delegate_builder;
} TfLiteDelegate;

static const char* kKnown[] = {
    "verbose", "is_precision_loss_allowed", "inference_preference", "inference_priority1",
    "inference_priority2", "inference_priority3", "experimental_flags", "max_delegated_partitions",
    "serialization_dir", "model_token", NULL,
};

static TfLiteStatus Prepare(TfLiteContext* context, TfLiteDelegate* delegate) {
  (void)context;
  (void)delegate;
  return 0; /* claims nothing */
}

static int known(const char* key) {
  for (int i = 0; kKnown[i] != NULL; ++i) {
    if (strcmp(kKnown[i], key) == 0) return 1;
  }
  return 0;
}

TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t n,
                                              void (*report_error)(const char*)) {
  const char* record = getenv("STUB_DELEGATE_RECORD");
  FILE* out = record != NULL && record[0] != '\0' ? fopen(record, "a") : NULL;
  for (size_t i = 0; i < n; ++i) {
    if (out != NULL) fprintf(out, "%s=%s\n", keys[i], values[i]);
    if (!known(keys[i])) {
      char message[256];
      snprintf(message, sizeof message, "stub delegate: unknown option '%s'", keys[i]);
      if (report_error != NULL) report_error(message);
      if (out != NULL) fclose(out);
      return NULL;
    }
  }
  if (out != NULL) fclose(out);
  TfLiteDelegate* delegate = (TfLiteDelegate*)calloc(1, sizeof(TfLiteDelegate));
  if (delegate == NULL) return NULL;
  delegate->Prepare = Prepare;
  return delegate;
}

void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate) { free(delegate); }
