#pragma once
// Library version and the versioned inline namespace (as fmt does): symbols carry the
// major version, so two incompatible fhetensor builds in one program fail to link instead
// of mixing object layouts silently.

#define FHETENSOR_VERSION_MAJOR 0
#define FHETENSOR_VERSION_MINOR 1
#define FHETENSOR_VERSION_PATCH 0

#define FHETENSOR_BEGIN_NAMESPACE \
  namespace fhetensor {           \
  inline namespace v0 {
#define FHETENSOR_END_NAMESPACE \
  }                             \
  }
